"""Python API for using a trained detector: ``init_detector`` and ``inference_detector``.

Mirrors MMDetection's names so notebook code carries over::

    model = init_detector('configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py', 'work_dirs/demo/epoch_10.pth')
    result = inference_detector(model, 'image.png')      # DetDataSample
    result.pred_instances.bboxes                         # (K, 4) xyxy, pixels of image.png
"""
import copy
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.runner import load_checkpoint

from ..config_utils import enter_default_scope, get_test_pipeline_cfg, merge_overrides
from ..engine import setup_runtime
from ..fileio import allow_unsafe_load
from ..registry import MODELS
from ..structures import DetDataSample
from .inference_path import apply_inference_path, choose_inference_path, inference_autocast

ImageType = Union[str, Path, np.ndarray]


def init_detector(config: Union[str, Path, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                  cfg_options: Optional[dict] = None, unsafe_load: bool = False, fuse_conv_bn: bool = False,
                  channels_last: bool = False, exact: bool = False, amp: bool = False) -> torch.nn.Module:
    """Build the detector of a config, load a checkpoint into it and put it in eval mode.

    Args:
        config: config file path or a loaded ``Config``.
        checkpoint: checkpoint path (``.pth`` written by the Runner or an MMDetection checkpoint).
            ``None`` keeps the freshly initialised weights.
        device: where the model runs, e.g. ``'cpu'`` or ``'cuda:0'``.
        cfg_options: overrides merged into the config, as ``--cfg-options`` does.
        unsafe_load: load a checkpoint that the safe loader refuses (it needs pickle globals
            beyond tensors, numpy and mmengine's history, see
            :mod:`rcnn_plugins.fileio.safe_load`) with ``weights_only=False``. It can run code:
            only for files you trust.
        exact: run the model as built. By default the fastest path whose predictions equal the
            plain model's to float rounding is applied and logged (on a CPU: BN folded into the
            convolutions + channels-last; see :mod:`rcnn_plugins.apis.inference_path`). The fused
            model's ``state_dict`` keys differ: load with ``exact=True`` to save or train it.
        amp: autocast in :func:`inference_detector`: bf16 + channels-last on a CPU with native bf16
            (refused with the reason elsewhere), fp16 on a GPU.
        fuse_conv_bn, channels_last: ask for exactly these switches instead of the default choice
            (see :func:`rcnn_plugins.models.fast_inference.prepare_for_inference`).

    The class names stored in the checkpoint's ``meta.dataset_meta`` (written by the Runner) are
    attached as ``model.dataset_meta`` so predictions can be named.
    """
    setup_runtime()
    cfg = config if isinstance(config, Config) else Config.fromfile(str(config))
    merge_overrides(cfg, cfg_options)
    enter_default_scope(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    if checkpoint is not None and model_cfg.get('backbone', {}).get('init_cfg') is not None:
        # The checkpoint replaces every weight; don't try to fetch ImageNet weights first.
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.cfg = cfg
    with allow_unsafe_load(unsafe_load):
        if checkpoint is not None:
            ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
            model.dataset_meta = ckpt.get('meta', {}).get('dataset_meta', None)
        else:  # init_cfg may load weights too (Pretrained backbone)
            model.init_weights()
            model.dataset_meta = None
    model = model.to(device).eval()
    if fuse_conv_bn or channels_last:
        path = dict(fuse_conv_bn=fuse_conv_bn, channels_last=channels_last, autocast=None,
                    reason=f'as asked: fuse_conv_bn={fuse_conv_bn}, channels_last={channels_last}')
    else:
        path = choose_inference_path(device, exact=exact, amp=amp)
    return apply_inference_path(model, path)


def _test_pipeline(cfg: Config, from_array: bool) -> Compose:
    """The config's test pipeline, with the file loader swapped for an array loader if needed."""
    pipeline = get_test_pipeline_cfg(cfg)
    if from_array:
        pipeline[0] = dict(type='LoadImageFromNDArray')
    return Compose(pipeline)


@torch.no_grad()
def inference_detector(model: torch.nn.Module,
                       imgs: Union[ImageType, Sequence[ImageType]]) -> Union[DetDataSample, List[DetDataSample]]:
    """Run a detector built by :func:`init_detector` on image files or BGR ``uint8`` arrays (H, W, 3).

    Returns one ``DetDataSample`` per image (a single one for a single input) whose
    ``pred_instances`` hold ``bboxes`` (K, 4) xyxy in pixels of the input image, ``scores`` and
    ``labels``.
    """
    single = isinstance(imgs, (str, Path, np.ndarray))
    img_list = [imgs] if single else list(imgs)
    if not img_list:
        return []
    pipelines = {}  # built once per input kind (file or array), shared by the images of that kind
    results = []
    for i, img in enumerate(img_list):
        from_array = isinstance(img, np.ndarray)
        if from_array not in pipelines:
            pipelines[from_array] = _test_pipeline(model.cfg, from_array)
        data = dict(img=img, img_id=i) if from_array else dict(img_path=str(img), img_id=i)
        data = pipelines[from_array](data)
        with inference_autocast(model):
            results.extend(model.test_step(pseudo_collate([data])))
    return results[0] if single else results
