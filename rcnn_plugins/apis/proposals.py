"""Proposals of a trained RPN for a whole dataset, written as a proposal file (``tools/misc/gen_proposals.py``).

The model is an ``RPN`` detector or any two-stage detector with an ``rpn_head`` (its RPN part is
used: backbone, neck, RPN head). The file is MMDetection's proposal list: one ``(N, 5)``
float32 array ``(x1, y1, x2, y2, score)`` per image, in original-image pixels, sorted by score,
aligned with the annotation file's images (every image: no ``filter_cfg``, no ``indices``), so it
is the ``proposal_file`` of that same dataset config (see
:mod:`rcnn_plugins.datasets.proposal_file`). A dataset wrapper (``RepeatDataset``,
``ConcatDataset`` of VOC2007 + VOC2012) gets one file per dataset it wraps.

Images go through the config's test pipeline (resize as at test time, no flip), for every split.
"""
import copy
import os.path as osp
from typing import List, Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from ..config_utils import enter_default_scope, get_test_pipeline_cfg, leaf_datasets, load_config
from ..datasets.proposal_file import dump_proposal_file
from ..registry import DATASETS
from .inference import init_detector

SPLITS = ('train', 'val', 'test')


def proposal_file_names(out: str, num: int) -> List[str]:
    """``out`` for one dataset; ``<stem>_<k><ext>`` for the k-th of several."""
    if num == 1:
        return [out]
    stem, ext = osp.splitext(out)
    return [f'{stem}_{k}{ext}' for k in range(num)]


def proposal_pipeline(cfg: Config) -> list:
    """The config's test pipeline without ``LoadProposals`` (the RPN makes the proposals)."""
    return get_test_pipeline_cfg(cfg, drop=('LoadProposals', ))


def rpn_module(model: torch.nn.Module) -> torch.nn.Module:
    """The RPN head of an ``RPN`` detector (``bbox_head``) or of a two-stage detector (``rpn_head``)."""
    head = getattr(model, 'rpn_head', None) if hasattr(model, 'roi_head') else getattr(model, 'bbox_head', None)
    if head is None or not hasattr(head, 'predict_by_feat'):
        raise ValueError(f'{type(model).__name__} has no RPN head to make proposals with; use an RPN '
                         'or a two-stage detector with an rpn_head (e.g. FasterRCNN)')
    return head


@torch.no_grad()
def rpn_proposals(model: torch.nn.Module, data: dict, proposal_cfg: Optional[dict] = None) -> List[np.ndarray]:
    """Proposals for one collated batch: per image an ``(N, 5)`` float32 array in original pixels.

    ``proposal_cfg`` (``nms_pre``, ``max_per_img``, ``nms``, ``min_bbox_size``) defaults to the
    head's ``test_cfg`` (the model config's ``test_cfg.rpn``).
    """
    head = rpn_module(model)
    data = model.data_preprocessor(data, False)
    metas = [s.metainfo for s in data['data_samples']]
    results = head.predict_by_feat(*head(model.extract_feat(data['inputs'])), batch_img_metas=metas,
                                   cfg=proposal_cfg, rescale=True)
    return [torch.cat([r.bboxes, r.scores[:, None]], dim=1).float().cpu().numpy() for r in results]


def dataset_proposals(model: torch.nn.Module, dataset_cfg: dict, pipeline: list, batch_size: int = 1,
                      proposal_cfg: Optional[dict] = None) -> List[np.ndarray]:
    """Proposals of every image of one (leaf) dataset config, in annotation-file order."""
    dataset_cfg = copy.deepcopy(dataset_cfg)
    for key in ('indices', 'proposal_file'):
        dataset_cfg.pop(key, None)
    # test_mode: no filter_cfg, so the list is aligned with the annotation file.
    dataset_cfg.update(pipeline=pipeline, test_mode=True, lazy_init=False)
    dataset = DATASETS.build(dataset_cfg)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=pseudo_collate)
    model.eval()
    out = []
    for data in loader:
        out.extend(rpn_proposals(model, data, proposal_cfg))
    return out


def generate_proposal_files(model: torch.nn.Module, cfg: Config, out: str, split: str = 'train',
                            proposal_cfg: Optional[dict] = None) -> List[str]:
    """Write the proposals of ``model`` for the ``split`` dataset(s) of ``cfg``; return the files written.

    Args:
        model: an RPN / two-stage detector with its weights loaded.
        cfg: the config whose ``{split}_dataloader`` lists the images (its test pipeline loads them).
        out: the proposal file (``.pkl``); several wrapped datasets give ``<stem>_<k>.pkl``.
        split: ``'train'``, ``'val'`` or ``'test'``.
        proposal_cfg: RPN post-processing for these proposals; None: ``test_cfg.rpn``.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'the proposal file must be a .pkl file (MMDetection\'s format), got {out}')
    enter_default_scope(cfg)
    dataloader = cfg.get(f'{split}_dataloader')
    if dataloader is None:
        raise ValueError(f'the config has no {split}_dataloader')
    pipeline = proposal_pipeline(cfg)
    batch_size = (cfg.get('test_dataloader') or cfg.get('val_dataloader')).get('batch_size', 1)
    leaves = leaf_datasets(dataloader['dataset'])
    paths = proposal_file_names(out, len(leaves))
    for leaf, path in zip(leaves, paths):
        dump_proposal_file(dataset_proposals(model, leaf, pipeline, batch_size, proposal_cfg), path)
    return paths


def gen_proposals(config: Union[str, Config], checkpoint: str, out: str, split: str = 'train',
                  device: Optional[str] = None, cfg_options: Optional[dict] = None) -> List[str]:
    """``tools/misc/gen_proposals.py``: load a trained RPN / Faster R-CNN and write its proposal file(s)."""
    cfg = load_config(config, cfg_options)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = init_detector(cfg, checkpoint, device=device, exact=True)  # training data: the plain model
    return generate_proposal_files(model, cfg, out, split)
