"""4-step alternating training of Faster R-CNN (Ren et al. 2015, section 3.2): ``tools/train_alternating.py``.

From one ordinary Faster R-CNN config (``model.type='FasterRCNN'``, with or without a neck) four
stage configs are derived and trained one after the other, each in its own folder of the work dir:

==============  ======================================================================================
``stage1_rpn``  ``RPN`` (backbone, neck, rpn_head; ``train_cfg.rpn``) from the config's ImageNet init;
                then its proposals for the training images (``model.train_cfg.rpn_proposal``)
``stage2_rcnn`` ``FastRCNN`` (backbone, neck, roi_head) from a fresh ImageNet init, on stage 1's
                proposals (the dataset's ``proposal_file`` + ``LoadProposals`` in its pipeline)
``stage3_rpn``  ``RPN`` with backbone + neck taken from stage 2 and frozen (``FreezeModulesHook``:
                no gradient, eval mode, so they stay bit-identical); only the RPN head trains, from its
                own fresh init (as py-faster-rcnn); then its proposals for the training images
``stage4_rcnn`` ``FastRCNN`` with the same frozen backbone + neck and stage 2's roi_head, fine-tuning only
                the roi_head on stage 3's proposals
==============  ======================================================================================

The result, ``faster_rcnn_final.pth``, is one Faster R-CNN checkpoint of the original config
(backbone + neck shared by stages 2-4, ``rpn_head`` = stage 3's RPN head, ``roi_head`` = stage 4's)
that ``tools/test.py CONFIG faster_rcnn_final.pth`` evaluates like any other.

Schedules: each stage trains with the config's own ``train_cfg`` / ``param_scheduler`` /
``optim_wrapper`` unless the config has ``alternating_cfg = dict(stages=[s1, s2, s3, s4])``, each
``s_k`` a dict of config keys (dotted keys allowed, as ``--cfg-options``) merged into stage k's
config, e.g. ``dict(train_cfg=dict(max_iters=60000))``. Validation is off inside the stages (an
RPN or a Fast R-CNN without proposals for the val images cannot run the config's evaluator).

The four stages are the rows of :data:`STAGE_TABLE` (name, kind, what initialises it, whether
the shared layers are frozen, where its proposals come from); the code below reads the table, so a
stage is always named, never a 0-based index against a 1-based name.

Each stage ends with ``model_final.pth`` (and for stages 1 and 3 ``proposals_train.pkl``), written
atomically; a stage whose outputs exist is done. With ``resume=True`` done stages are skipped and
an unfinished stage resumes from its ``last_checkpoint`` (mmengine's resume) or starts afresh.
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper

from ..config_utils import enter_default_scope, leaf_datasets
from ..engine import build_runner
from ..fileio import atomic_write, load_checkpoint_file
from .inference import init_detector
from .proposals import generate_proposal_files, proposal_file_names

FINAL = 'faster_rcnn_final.pth'
#: the layers the RPN and the R-CNN share (those of them the config has)
SHARED = ('backbone', 'neck')


class AlternatingError(ValueError):
    """Alternating training cannot start as asked: the config is not a Faster R-CNN one, its
    ``alternating_cfg`` is malformed, or the work dir holds an earlier run (the message says which
    and the fix)."""


@dataclass(frozen=True)
class Stage:
    """One row of the stage table.

    Attributes:
        name: the stage's folder under the work dir.
        kind: ``'rpn'`` (an ``RPN`` detector; writes proposals for the training images) or
            ``'rcnn'`` (a ``FastRCNN`` trained on another stage's proposals).
        init: what the stage's weights start from: ``()`` for the config's own init (ImageNet),
            else ``(stage name, part)`` pairs applied in order, ``part`` being ``'shared'``
            (backbone + neck) or a state-dict prefix such as ``'roi_head.'``.
        frozen: the shared layers are frozen (``FreezeModulesHook``: no gradient, eval mode).
        proposals_from: the RPN stage whose proposal files an ``'rcnn'`` stage trains on.
    """
    name: str
    kind: str
    init: Tuple[Tuple[str, str], ...] = ()
    frozen: bool = False
    proposals_from: Optional[str] = None


#: Ren et al.'s 4-step schedule.
STAGE_TABLE: Tuple[Stage, ...] = (
    Stage('stage1_rpn', 'rpn'),
    Stage('stage2_rcnn', 'rcnn', proposals_from='stage1_rpn'),
    Stage('stage3_rpn', 'rpn', init=(('stage2_rcnn', 'shared'), ), frozen=True),
    Stage('stage4_rcnn', 'rcnn', init=(('stage3_rpn', 'shared'), ('stage2_rcnn', 'roi_head.')), frozen=True,
          proposals_from='stage3_rpn'),
)
STAGES = tuple(stage.name for stage in STAGE_TABLE)
#: where each part of faster_rcnn_final.pth comes from (the shared layers are checked identical in
#: every frozen stage)
FINAL_PARTS = dict(shared='stage2_rcnn', rpn_head='stage3_rpn', roi_head='stage4_rcnn')

StageRef = Union[int, str, Stage]


def get_stage(ref: StageRef) -> Stage:
    """The table row named ``ref`` (a name, a row, or its position in :data:`STAGE_TABLE`)."""
    if isinstance(ref, Stage):
        return ref
    if isinstance(ref, int):
        return STAGE_TABLE[ref]
    for stage in STAGE_TABLE:
        if stage.name == ref:
            return stage
    raise AlternatingError(f'no stage {ref!r}; the stages are {", ".join(STAGES)}')


def _shared(cfg: Config) -> List[str]:
    return [name for name in SHARED if cfg.model.get(name) is not None]


def _shared_prefixes(cfg: Config) -> List[str]:
    return [f'{name}.' for name in _shared(cfg)]


def check_config(cfg: Config) -> None:
    """A Faster R-CNN config: a two-stage detector with rpn_head, roi_head and their train/test cfgs."""
    model = cfg.get('model', {})
    missing = [k for k in ('backbone', 'rpn_head', 'roi_head') if model.get(k) is None]
    if str(model.get('type', '')).split('.')[-1] != 'FasterRCNN' or missing:
        raise AlternatingError(f"alternating training needs a Faster R-CNN config (model.type='FasterRCNN' with "
                               f"backbone, rpn_head and roi_head); got type {model.get('type')!r}"
                               + (f', missing {missing}' if missing else ''))
    for part, keys in (('train_cfg', ('rpn', 'rpn_proposal', 'rcnn')), ('test_cfg', ('rpn', 'rcnn'))):
        absent = [k for k in keys if k not in (model.get(part) or {})]
        if absent:
            raise AlternatingError(f'alternating training: model.{part} lacks {absent}')
    stages = cfg.get('alternating_cfg', {}).get('stages')
    if stages is not None and len(stages) != len(STAGE_TABLE):
        raise AlternatingError(f'alternating_cfg.stages must list {len(STAGE_TABLE)} dicts (one per stage: '
                               f'{", ".join(STAGES)}), got {len(stages)}')


def stage_paths(work_dir: str, ref: StageRef, cfg: Config) -> Dict[str, object]:
    """Files of a stage: its folder, final checkpoint, proposal files (RPN stages)."""
    stage = get_stage(ref)
    folder = osp.join(work_dir, stage.name)
    num_leaves = len(leaf_datasets(cfg.train_dataloader.dataset))
    proposals = (proposal_file_names(osp.join(folder, 'proposals_train.pkl'), num_leaves)
                 if stage.kind == 'rpn' else [])
    return dict(dir=folder, ckpt=osp.join(folder, 'model_final.pth'), proposals=proposals)


def stage_done(paths: dict) -> bool:
    return all(osp.isfile(p) for p in [paths['ckpt'], *paths['proposals']])


def _detector(cfg: Config, rpn: bool) -> dict:
    """The stage's model config: an RPN or a FastRCNN made of the Faster R-CNN config's parts."""
    m = cfg.model
    model = dict(data_preprocessor=m.get('data_preprocessor'), backbone=copy.deepcopy(m.backbone),
                 neck=copy.deepcopy(m.get('neck')))
    if rpn:
        model.update(type='RPN', rpn_head=m.rpn_head, train_cfg=dict(rpn=m.train_cfg.rpn),
                     test_cfg=dict(rpn=m.test_cfg.rpn))
    else:
        model.update(type='FastRCNN', roi_head=m.roi_head, train_cfg=dict(rcnn=m.train_cfg.rcnn),
                     test_cfg=dict(rcnn=m.test_cfg.rcnn))
    return model


def _with_proposals(dataset_cfg: dict, files: List[str]) -> None:
    """Give each wrapped dataset its proposal file and ``LoadProposals`` right after the image loader."""
    leaves = leaf_datasets(dataset_cfg)
    for leaf, path in zip(leaves, files):
        pipeline = [t for t in leaf['pipeline'] if t['type'] != 'LoadProposals']
        at = next((i + 1 for i, t in enumerate(pipeline) if 'LoadImage' in t['type']), 0)
        pipeline.insert(at, dict(type='LoadProposals', num_max_proposals=None))
        leaf['pipeline'] = pipeline
        leaf['proposal_file'] = path


def stage_config(cfg: Config, ref: StageRef, work_dir: str) -> Config:
    """The training config of a stage, derived from the Faster R-CNN config ``cfg``."""
    stage = get_stage(ref)
    config = Config(copy.deepcopy(cfg.to_dict()))
    config.model = _detector(cfg, stage.kind == 'rpn')
    config.work_dir = stage_paths(work_dir, stage, cfg)['dir']
    if stage.init:
        # The stage starts from earlier stages' weights (load_from), not from ImageNet.
        config.model.backbone.init_cfg = None
    if stage.frozen:
        hooks = list(config.get('custom_hooks') or [])
        config.custom_hooks = hooks + [dict(type='FreezeModulesHook', modules=_shared(cfg))]
    if stage.proposals_from is not None:
        _with_proposals(config.train_dataloader.dataset, stage_paths(work_dir, stage.proposals_from, cfg)['proposals'])
    # No validation inside a stage; nothing to pick a best checkpoint by.
    config.val_dataloader = config.val_cfg = config.val_evaluator = None
    if config.get('default_hooks', {}).get('checkpoint') is not None:
        config.default_hooks.checkpoint.save_best = None
    # One process runs four Runners: distinct names keep their loggers / visualizers apart.
    # (mmengine appends the start time to experiment_name and names the visualizer after it)
    config.experiment_name = stage.name
    if config.get('visualizer') is not None:
        config.visualizer.pop('name', None)
    overrides = (cfg.get('alternating_cfg') or {}).get('stages')
    if overrides:
        config.merge_from_dict(copy.deepcopy(overrides[STAGES.index(stage.name)]))
    config.pop('alternating_cfg', None)
    config.load_from, config.resume = None, False
    return config


def _load(path: str) -> dict:
    """A stage's checkpoint, through the safe loader (tensors and plain metadata only)."""
    return load_checkpoint_file(path, map_location='cpu')


def _load_state(path: str) -> dict:
    ckpt = _load(path)
    return ckpt.get('state_dict', ckpt)


def _pick(state: dict, prefixes, rename: Optional[Dict[str, str]] = None) -> dict:
    """Entries of ``state`` under the given prefixes, optionally renamed (``{'bbox_head.': 'rpn_head.'}``)."""
    out = {}
    for key, value in state.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                new = key
                for old, repl in (rename or {}).items():
                    if key.startswith(old):
                        new = repl + key[len(old):]
                out[new] = value
    return out


def _save_atomic(obj: dict, path: str) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f)


def _init_weights_file(cfg: Config, ref: StageRef, work_dir: str) -> Optional[str]:
    """Write the weights a stage starts from (its ``init`` row: earlier stages' parts, in order) into
    its folder and return the path; None for a stage that starts from the config's own init."""
    stage = get_stage(ref)
    if not stage.init:
        return None
    state = {}
    for source, part in stage.init:
        prefixes = _shared_prefixes(cfg) if part == 'shared' else [part]
        state.update(_pick(_load_state(stage_paths(work_dir, source, cfg)['ckpt']), prefixes))
    path = osp.join(stage_paths(work_dir, stage, cfg)['dir'], 'init_weights.pth')
    _save_atomic(dict(meta=dict(source='alternating training'), state_dict=state), path)
    return path


def _train_stage(cfg: Config, stage: Stage, work_dir: str, resume: bool) -> None:
    """Train a stage (resuming from its last checkpoint if asked and there is one) and write
    ``model_final.pth``."""
    paths = stage_paths(work_dir, stage, cfg)
    config = stage_config(cfg, stage, work_dir)
    last = osp.join(paths['dir'], 'last_checkpoint')
    if resume and osp.isfile(last):
        with open(last) as f:
            config.load_from, config.resume = f.read().strip(), True
    else:
        config.load_from = _init_weights_file(cfg, stage, work_dir)
    runner = build_runner(config)
    runner.train()
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    meta = dict(stage=stage.name, epoch=runner.epoch, iter=runner.iter,
                dataset_meta=copy.deepcopy(runner.train_dataloader.dataset.metainfo))
    _save_atomic(dict(meta=meta, state_dict=state), paths['ckpt'])


def _write_proposals(cfg: Config, stage: Stage, work_dir: str) -> None:
    """Proposals of an RPN stage for the training images, with ``train_cfg.rpn_proposal``."""
    paths = stage_paths(work_dir, stage, cfg)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    # exact: these proposals are training data; keep them independent of the inference fast path
    model = init_detector(stage_config(cfg, stage, work_dir), paths['ckpt'], device=device, exact=True)
    out = osp.join(paths['dir'], 'proposals_train.pkl')
    generate_proposal_files(model, cfg, out, split='train', proposal_cfg=cfg.model.train_cfg.rpn_proposal)


def assemble_final(cfg: Config, work_dir: str) -> str:
    """``faster_rcnn_final.pth`` from :data:`FINAL_PARTS`: the shared layers (checked identical in
    every frozen stage), the RPN stage's head as ``rpn_head``, the last R-CNN stage's ``roi_head``."""
    ckpts = {stage.name: _load(stage_paths(work_dir, stage, cfg)['ckpt']) for stage in STAGE_TABLE}
    states = {name: ckpt['state_dict'] for name, ckpt in ckpts.items()}
    final = _pick(states[FINAL_PARTS['shared']], _shared_prefixes(cfg))
    for stage in STAGE_TABLE:
        if stage.frozen:
            changed = [key for key in final if not torch.equal(final[key], states[stage.name][key])]
            if changed:
                raise RuntimeError(f'{stage.name} changed the shared layers it should keep frozen, e.g. '
                                   f'{changed[:3]}; is something in the config unfreezing them?')
    # An RPN detector keeps its head as bbox_head (MMDetection's keys); Faster R-CNN calls it rpn_head.
    final.update(_pick(states[FINAL_PARTS['rpn_head']], ['bbox_head.'], rename={'bbox_head.': 'rpn_head.'}))
    final.update(_pick(states[FINAL_PARTS['roi_head']], ['roi_head.']))
    frozen = ' = '.join(stage.name for stage in STAGE_TABLE if stage.frozen)
    meta = dict(dataset_meta=ckpts[FINAL_PARTS['roi_head']]['meta'].get('dataset_meta'),
                alternating=dict(shared=f'{FINAL_PARTS["shared"]} (= {frozen})', rpn_head=FINAL_PARTS['rpn_head'],
                                 roi_head=FINAL_PARTS['roi_head']))
    path = osp.join(work_dir, FINAL)
    _save_atomic(dict(meta=meta, state_dict=final), path)
    return path


def train_alternating(cfg: Config, work_dir: str, resume: bool = False) -> str:
    """Run the stages of :data:`STAGE_TABLE` and return the path of ``faster_rcnn_final.pth``.

    Without ``resume`` the work dir must not hold stage outputs of an earlier run (so an old
    stage can never be mistaken for a finished one of this run).

    Raises:
        AlternatingError: not a Faster R-CNN config, a malformed ``alternating_cfg``, or an earlier
            run in ``work_dir`` without ``resume``.
    """
    check_config(cfg)
    enter_default_scope(cfg)
    if 'launcher' not in cfg:
        cfg.launcher = 'none'
    if not resume:
        earlier = [stage.name for stage in STAGE_TABLE if osp.isdir(stage_paths(work_dir, stage, cfg)['dir'])]
        if earlier:
            raise AlternatingError(f'{work_dir} already holds {", ".join(earlier)} of an earlier run: continue it '
                                   'with --resume, or give another --work-dir')
    for stage in STAGE_TABLE:
        paths = stage_paths(work_dir, stage, cfg)
        if stage_done(paths):
            print(f'{stage.name}: done ({paths["ckpt"]}), skipped', flush=True)
            continue
        if not osp.isfile(paths['ckpt']):
            _train_stage(cfg, stage, work_dir, resume)
        if stage.kind == 'rpn':
            _write_proposals(cfg, stage, work_dir)
    return assemble_final(cfg, work_dir)
