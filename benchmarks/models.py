"""The two models of the benchmark: our R50-FPN Faster R-CNN from its config, and torchvision's set to
the same work (every torchvision setting read from our config), with the same weights.

* OURS: ``configs/_base_/models/faster-rcnn_r50_fpn.py`` built through ``rcnn_plugins.registry.MODELS``
  (backbone ``init_cfg=None``: no pretrained file offline).
* TORCHVISION: ``torchvision.models.detection.FasterRCNN`` on a ResNet-50 + FPN built exactly as
  ``fasterrcnn_resnet50_fpn`` builds it *when it has weights* (FrozenBatchNorm2d, 3 trainable stages):
  ``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` would silently fall back to plain
  BatchNorm2d and all 5 stages trainable, which is not the configuration ours mirrors.
* Same weights: torchvision's random initial weights are copied into ours (the architectures map
  one-to-one), so both send the same number of boxes through top-k / NMS / post-processing.
  The classifier of the box head is scaled up so that scores clear 0.05 (a random head gives
  ~1/81 per class, which would make the final NMS empty and skip real work).
"""
import os
import types

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'faster-rcnn_r50_fpn.py')

# Known differences between the two models that the harness does not (or cannot) remove.
REMAINING_DIFFERENCES = [
    'Normalisation layers: by default ours runs with norm_cfg.requires_grad=False, i.e. BN in eval '
    'mode with frozen affine weights (our FrozenBatchNorm2d, same work as torchvision\'s); '
    'MMDetection\'s config trains the BN affine weights of stages 2-4: --exact-config measures that '
    '(more work: BN weight gradients, and every BN input kept for backward, ~0.9 GiB at batch 2).',
    'RoI feature extraction: by default ours samples 2x2 points per bin as torchvision does '
    '(MMDetection\'s config: sampling_ratio=0, adaptive, up to 4x4 and more on P2, measured by '
    '--exact-config); ours aligned=True (half-pixel centres), torchvision aligned=False. Level '
    'mapping is the same rule in both (finest_scale=56 <=> canonical 224 at level 4).',
    'Anchors: same sizes (torchvision sizes 32..512, one per level == ours scale 8 x strides 4..64) '
    'and ratios; torchvision rounds its base anchors to integers, ours keeps them fractional. '
    'Valid flags: ours checks anchors against the padded shape, so in a batch of equal-size images '
    'all anchors are used, as in torchvision.',
    'RPN losses: ours sigmoid CE averaged over sampled anchors + L1 on deltas / (num sampled); '
    'torchvision BCE over sampled + smooth-L1 (beta=1/9, sum) / (num sampled).',
    'RCNN losses: ours L1 / (num sampled RoIs); torchvision smooth-L1 (beta=1/9, sum) / (num sampled).',
    'Box head regression: ours 80*4 outputs (no background regressor); torchvision 81*4.',
    'Proposals: ours decodes only the per-level top-k anchors; torchvision decodes every anchor '
    'before its per-level top-k (this is a real work difference, kept because it is each '
    'implementation\'s own choice).',
    'Low-quality RPN matches: ours requires IoU >= min_pos_iou=0.3 and loops gts '
    '(MMDetection); torchvision Matcher allows any best match.',
]


# --------------------------------------------------------------------------------------------


def load_config(config_path=DEFAULT_CONFIG, cfg_options=None, exact_config=False):
    """Our config; ``cfg_options`` (dotted keys) change both models, as torchvision's settings
    are read from it (e.g. ``model.test_cfg.rpn.max_per_img=100`` for quick runs).

    Unless ``exact_config``, two settings of ours are set to the work torchvision does:
    BatchNorm weights frozen (``norm_cfg.requires_grad=False``: torchvision's FrozenBatchNorm2d;
    MMDetection's config trains the BN affine weights of stages 2-4) and RoIAlign with 2x2 samples
    per bin (``sampling_ratio=2``: torchvision's MultiScaleRoIAlign; MMDetection's config uses
    0 = adaptive, up to 4x4 and more on P2, whose backward is costly on CPU). ``--exact-config``
    measures our config as it is.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config_path)
    if not exact_config:
        cfg.model.backbone.norm_cfg = dict(cfg.model.backbone.norm_cfg, requires_grad=False)
        cfg.model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio = 2
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_ours(cfg, device='cpu'):
    """Our detector from the config, with no pretrained checkpoint (offline)."""
    from mmengine.registry import init_default_scope
    init_default_scope('rcnn_plugins')
    from rcnn_plugins.registry import MODELS
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    model = MODELS.build(model_cfg)
    if hasattr(model, 'init_weights'):
        # mmengine logs one line per initialised tensor; keep the benchmark output readable.
        import logging

        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    return model.to(device)


def tv_kwargs_from_config(cfg, size):
    """torchvision FasterRCNN keyword arguments that reproduce our config's settings."""
    m = cfg.model
    tr, te = m.train_cfg, m.test_cfg
    h, w = size
    mean = [v / 255. for v in m.data_preprocessor.mean]
    std = [v / 255. for v in m.data_preprocessor.std]
    return dict(
        num_classes=m.roi_head.bbox_head.num_classes + 1,   # torchvision counts background
        # min/max chosen so that the scale factor is exactly 1: the image keeps the given size.
        min_size=min(h, w), max_size=max(h, w),
        image_mean=mean, image_std=std,
        rpn_pre_nms_top_n_train=tr.rpn_proposal.nms_pre,    # per level in both
        rpn_post_nms_top_n_train=tr.rpn_proposal.max_per_img,
        rpn_pre_nms_top_n_test=te.rpn.nms_pre,
        rpn_post_nms_top_n_test=te.rpn.max_per_img,
        rpn_nms_thresh=te.rpn.nms.iou_threshold,
        rpn_fg_iou_thresh=tr.rpn.assigner.pos_iou_thr,
        rpn_bg_iou_thresh=tr.rpn.assigner.neg_iou_thr,
        rpn_batch_size_per_image=tr.rpn.sampler.num,
        rpn_positive_fraction=tr.rpn.sampler.pos_fraction,
        rpn_score_thresh=0.0,
        box_score_thresh=te.rcnn.score_thr,
        box_nms_thresh=te.rcnn.nms.iou_threshold,
        box_detections_per_img=te.rcnn.max_per_img,
        box_fg_iou_thresh=tr.rcnn.assigner.pos_iou_thr,
        box_bg_iou_thresh=tr.rcnn.assigner.neg_iou_thr,
        box_batch_size_per_image=tr.rcnn.sampler.num,
        box_positive_fraction=tr.rcnn.sampler.pos_fraction,
    )


def build_tv(cfg, size, device='cpu', keep_resize=False):
    """torchvision's Faster R-CNN R50-FPN set to the same work as our config."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops import misc as misc_nn_ops

    frozen = cfg.model.backbone.get('frozen_stages', -1)
    # torchvision counts trainable stages from the top (layer4 ... conv1): 5 = nothing frozen.
    trainable_layers = 5 if frozen < 0 else 4 - frozen
    backbone = resnet50(weights=None, norm_layer=misc_nn_ops.FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(backbone, trainable_layers)
    model = FasterRCNN(backbone, **tv_kwargs_from_config(cfg, size))
    if not keep_resize:
        # Our pipeline resizes before the model; torchvision would bilinearly re-interpolate each
        # image at scale 1.0 here. Skip that no-op so the two do the same work.
        model.transform.resize = types.MethodType(lambda self, image, target=None: (image, target),
                                                  model.transform)
    return model.to(device)


def _tv_to_ours_key_map(tv_sd, ours_sd):
    """Map torchvision state_dict keys to ours (MMDetection names); returns {ours_key: tensor}.

    The mapping is the weight converter's (``rcnn_plugins.models.converters.torchvision``:
    background logit moved last, background regressor dropped); tensors our model lacks or holds in
    another shape are left out.
    """
    from rcnn_plugins.models.converters import torchvision_to_rcnn
    mapped, _ = torchvision_to_rcnn(tv_sd, src='torchvision model')
    return {k: v for k, v in mapped.items() if k in ours_sd and ours_sd[k].shape == v.shape}


def share_weights(ours, tv, cls_gain=8.0):
    """Give both models identical weights (torchvision's init copied into ours).

    The box classifier is multiplied by ``cls_gain`` first: with a random head every class scores
    ~1/81, under the 0.05 threshold, and the final per-class NMS would have nothing to do.
    Returns (number of our tensors set, number of our parameters/buffers left untouched).
    """
    with torch.no_grad():
        for p in tv.roi_heads.box_predictor.cls_score.parameters():
            p.mul_(cls_gain)
    ours_sd = ours.state_dict()
    mapped = _tv_to_ours_key_map(tv.state_dict(), ours_sd)
    ours.load_state_dict(mapped, strict=False)
    untouched = [k for k in ours_sd if k not in mapped and not k.endswith('num_batches_tracked')]
    return len(mapped), untouched


def build_models(cfg, size, device='cpu', keep_resize=False, seed=0):
    torch.manual_seed(seed)
    tv = build_tv(cfg, size, device, keep_resize)
    ours = build_ours(cfg, device)
    n_set, untouched = share_weights(ours, tv)
    info = dict(weights_copied=n_set, weights_not_shared=untouched)
    return ours, tv, info


def count_params(model):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


# --------------------------------------------------------------------------------------------
