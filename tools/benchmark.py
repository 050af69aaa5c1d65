"""Side-by-side benchmark: our R50-FPN Faster R-CNN against torchvision's, set to the same work.

What is compared
----------------
* OURS: ``configs/_base_/models/faster-rcnn_r50_fpn.py`` built through ``rcnn_plugins.registry.MODELS``
  (backbone ``init_cfg=None``: no pretrained file offline).
* TORCHVISION: ``torchvision.models.detection.FasterRCNN`` on a ResNet-50 + FPN built exactly as
  ``fasterrcnn_resnet50_fpn`` builds it *when it has weights* (FrozenBatchNorm2d, 3 trainable stages):
  ``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` would silently fall back to plain
  BatchNorm2d and all 5 stages trainable, which is not the configuration ours mirrors.
  Every torchvision setting (proposal counts, sampler sizes, thresholds, detections per image, class
  count, mean/std, frozen stages) is read from OUR config, so the two stay in step if the config changes.

Fairness rules
--------------
* Same batch for both: fixed-seed smooth random images with a few fixed random gt boxes.
  Ours receives the uint8 BGR image (its preprocessor does ``bgr_to_rgb``), torchvision the same
  pixels as RGB; each model's own uint8->float conversion, normalisation and padding to 32 is
  inside the timed region.
* Same weights: torchvision's random initial weights are copied into ours (the architectures map
  one-to-one), so both send the same number of boxes through top-k / NMS / post-processing.
  The classifier of the box head is scaled up so that scores clear 0.05 (a random head gives
  ~1/81 per class, which would make the final NMS empty and skip real work).
* torchvision's transform would interpolate every image at scale 1.0 (our pipeline resizes
  outside the model); that no-op resize is bypassed unless ``--tv-resize``.
* Runs are interleaved after warm-up (A B, B A, A B, ...) and medians are reported.
* Peak memory is measured per model in its own child process (same inputs, same weights).

Run ``python tools/benchmark.py --help``; ``--profile`` prints the top ops of each model.
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
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
# Model construction
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
# Inputs: one batch, two views (ours: uint8 BGR + DetDataSample; torchvision: float RGB + targets)
# --------------------------------------------------------------------------------------------
def make_batch(batch, size, num_gts=8, num_classes=80, seed=0):
    """Fixed-seed smooth random uint8 RGB images (3, H, W) and random gt boxes/labels per image."""
    h, w = size
    g = torch.Generator().manual_seed(seed)
    images, boxes, labels = [], [], []
    for _ in range(batch):
        # Low-frequency colour blobs plus fine noise: closer to a photo than white noise.
        coarse = torch.rand(1, 3, max(h // 32, 2), max(w // 32, 2), generator=g)
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode='bilinear', align_corners=False)[0]
        img = (img * 200 + torch.rand(3, h, w, generator=g) * 55).clamp(0, 255).to(torch.uint8)
        images.append(img)
        # Boxes of 2%..50% of the image side, fully inside the image.
        bw = (torch.rand(num_gts, generator=g) * 0.48 + 0.02) * w
        bh = (torch.rand(num_gts, generator=g) * 0.48 + 0.02) * h
        x1 = torch.rand(num_gts, generator=g) * (w - bw)
        y1 = torch.rand(num_gts, generator=g) * (h - bh)
        boxes.append(torch.stack([x1, y1, x1 + bw, y1 + bh], 1))
        labels.append(torch.randint(0, num_classes, (num_gts,), generator=g))
    return dict(images=images, boxes=boxes, labels=labels, size=size)


def ours_data(batch):
    """Fresh input dict for our detector (the model writes predictions into the samples)."""
    from mmengine.structures import InstanceData
    from rcnn_plugins.structures import DetDataSample
    h, w = batch['size']
    samples = []
    for i, (b, l) in enumerate(zip(batch['boxes'], batch['labels'])):
        s = DetDataSample(metainfo=dict(img_id=i, img_path=f'bench_{i}.jpg', ori_shape=(h, w), img_shape=(h, w),
                                        scale_factor=(1.0, 1.0), flip=False, flip_direction=None))
        s.gt_instances = InstanceData(bboxes=b.clone(), labels=l.clone())
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    # The config's preprocessor converts BGR -> RGB, so hand it BGR pixels of the same image.
    return dict(inputs=[img.flip(0).contiguous() for img in batch['images']], data_samples=samples)


def tv_data(batch):
    targets = [dict(boxes=b.clone(), labels=l + 1) for b, l in zip(batch['boxes'], batch['labels'])]
    return dict(images=list(batch['images']), targets=targets)


# --------------------------------------------------------------------------------------------
# One step of each kind, per model. Each returns a callable doing exactly the timed work.
# --------------------------------------------------------------------------------------------
def _sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def _autocast(device, amp):
    if not amp:
        return contextlib.nullcontext()
    if str(device).startswith('cuda'):
        return torch.autocast('cuda', dtype=torch.float16)
    return torch.autocast('cpu', dtype=torch.bfloat16)


def _sum_losses(losses):
    """Total loss as mmengine's parse_losses does: every entry whose key contains 'loss'."""
    total = 0.
    for k, v in losses.items():
        if 'loss' not in k:
            continue
        total = total + (sum(x.sum() for x in v) if isinstance(v, (list, tuple)) else v.sum())
    return total


class Stepper:
    """Holds a model, its optimizer and a prepared batch; ``infer()``/``train()`` do one timed step."""

    def __init__(self, name, model, batch, device='cpu', amp=False, lr=1e-4):
        self.name, self.model, self.batch, self.device, self.amp = name, model, batch, device, amp
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
        use_scaler = amp and str(device).startswith('cuda')
        self.scaler = torch.amp.GradScaler('cuda') if use_scaler else None

    # Untimed preparation: fresh containers, host tensors (moved to the device inside the step).
    def _prepare(self):
        return ours_data(self.batch) if self.name == 'ours' else tv_data(self.batch)

    def _step_ours(self, data, training):
        m, dev = self.model, self.device
        data = dict(inputs=[x.to(dev, non_blocking=True) for x in data['inputs']],
                    data_samples=[s.to(dev) for s in data['data_samples']])
        with _autocast(dev, self.amp):
            data = m.data_preprocessor(data, training)
            if training:
                return _sum_losses(m(**data, mode='loss'))
            return m(**data, mode='predict')

    def _step_tv(self, data, training):
        m, dev = self.model, self.device
        with _autocast(dev, self.amp):
            # torchvision's own input convention: float RGB in [0, 1]; it normalises and pads itself.
            images = [x.to(dev, non_blocking=True).float().div_(255.) for x in data['images']]
            if training:
                targets = [{k: v.to(dev) for k, v in t.items()} for t in data['targets']]
                return _sum_losses(m(images, targets))
            return m(images)

    def _step(self, data, training):
        return self._step_ours(data, training) if self.name == 'ours' else self._step_tv(data, training)

    def infer_fn(self):
        data = self._prepare()

        def run():
            self.model.eval()
            with torch.no_grad():
                out = self._step(data, training=False)
            _sync(self.device)
            return out
        return run

    def train_fn(self):
        data = self._prepare()

        def run():
            self.model.train()
            loss = self._step(data, training=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            _sync(self.device)
            return loss
        return run


def run_interleaved(steppers, kind, warmup, iters, label, log=print):
    """Alternate the models each round (A B, then B A, ...) so drift hits both equally."""
    times = {s.name: [] for s in steppers}
    for r in range(warmup + iters):
        order = steppers if r % 2 == 0 else steppers[::-1]
        for s in order:
            fn = s.infer_fn() if kind == 'infer' else s.train_fn()   # untimed: fresh inputs
            _sync(s.device)
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[s.name].append(dt)
            tag = 'warm-up' if r < warmup else f'iter {r - warmup + 1}/{iters}'
            log(f'  [{label}] {tag:>10} {s.name:<11} {dt:8.3f} s')
    return times


def _summary(times, batch):
    med = statistics.median(times)
    return dict(median_s=med, times_s=times, imgs_per_s=batch / med)


# --------------------------------------------------------------------------------------------
# Peak memory in child processes
# --------------------------------------------------------------------------------------------
def _proc_status_kb(field):
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); returns False where not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def flush_denormals() -> None:
    """Treat denormal floats as zero on the CPU, for both models alike.

    After the first SGD step from random weights, tiny gradients and activations turn denormal and
    x86 arithmetic on them is many times slower: measured at 800x1333, batch 2, the second
    training step took 41 s (torchvision) and over 100 s (ours) instead of ~27 s. Flushing keeps
    both at their real speed; the numbers it changes are below 1.2e-38.
    """
    torch.set_flush_denormal(True)


def memory_child(args):
    """Runs in the child: build one model with the shared weights, run the step, report the peak."""
    flush_denormals()
    torch.manual_seed(0)
    device = args.device
    cfg = load_config(args.config, args.cfg_options, args.exact_config)
    size = parse_size(args.size)
    if args.which == 'ours':
        model = build_ours(cfg, device)
    else:
        model = build_tv(cfg, size, device, keep_resize=args.tv_resize)
    model.load_state_dict(torch.load(args.state_dict, map_location=device, mmap=True))
    batch = make_batch(args.batch, size)
    stepper = Stepper(args.which, model, batch, device, args.amp)
    fn = stepper.infer_fn() if args.mode == 'infer' else stepper.train_fn()
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    base_rss_kb = _proc_status_kb('VmRSS')
    reset_ok = _reset_peak_rss()
    for _ in range(max(args.iters, 1)):
        fn()
        if args.mode == 'train':
            fn = stepper.train_fn()
    out = dict(which=args.which, mode=args.mode, batch=args.batch, base_rss_mb=(base_rss_kb or 0) / 1024,
               hwm_reset=reset_ok)
    hwm = _proc_status_kb('VmHWM')
    if hwm is None:   # not Linux: ru_maxrss (kB on Linux, bytes on macOS)
        import resource
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm = hwm // 1024 if sys.platform == 'darwin' else hwm
    out['peak_rss_mb'] = hwm / 1024
    out['delta_rss_mb'] = out['peak_rss_mb'] - out['base_rss_mb']
    if str(device).startswith('cuda'):
        out['peak_cuda_mb'] = torch.cuda.max_memory_allocated() / 2**20
        out['delta_cuda_mb'] = (torch.cuda.max_memory_allocated() - base) / 2**20
    print('MEMORY_RESULT ' + json.dumps(out), flush=True)


def _fmt_opt(v):
    """Back to the command-line form DictAction parses (lists/tuples without spaces)."""
    if isinstance(v, (list, tuple)):
        return '[' + ','.join(_fmt_opt(x) for x in v) + ']'
    return str(v)


def _collect_child(name, proc, t0, res, mode, batch, log):
    out, err = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith('MEMORY_RESULT ')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'memory child for {name} failed (rc={proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}')
    res[name] = json.loads(lines[-1][len('MEMORY_RESULT '):])
    log(f'  [memory {mode} b{batch}] {name:<11} peak RSS {res[name]["peak_rss_mb"]:8.1f} MiB '
        f'(+{res[name]["delta_rss_mb"]:.1f} over model+inputs) in {time.perf_counter() - t0:.1f} s')


def measure_memory(ours, tv, mode, batch, args, log=print):
    """Peak memory of each model for one ``mode`` step, each in its own child process.

    Children run one after the other unless ``args.memory_parallel`` (peaks are per process, so
    running them side by side changes only the wall time; the tests use it to stay short).
    """
    res = {}
    with tempfile.TemporaryDirectory(prefix='rcnn_bench_') as tmp:
        procs = {}
        for name, model in (('ours', ours), ('torchvision', tv)):
            path = os.path.join(tmp, f'{name}.pth')
            torch.save(model.state_dict(), path)
            cmd = [sys.executable, os.path.abspath(__file__), '--_memory-child', name, '--_state-dict', path,
                   '--_mode', mode, '--batch', str(batch), '--size', f'{args.size[0]}x{args.size[1]}',
                   '--device', args.device, '--iters', str(args.memory_iters), '--config', args.config]
            if args.amp:
                cmd.append('--amp')
            if args.tv_resize:
                cmd.append('--tv-resize')
            if args.exact_config:
                cmd.append('--exact-config')
            if args.cfg_options:
                cmd += ['--cfg-options'] + [f'{k}={_fmt_opt(v)}' for k, v in args.cfg_options.items()]
            procs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            cwd=REPO_ROOT), time.perf_counter())
            if not getattr(args, 'memory_parallel', False):
                _collect_child(name, *procs[name], res, mode, batch, log)
        for name, (proc, t0) in procs.items():
            if name not in res:
                _collect_child(name, proc, t0, res, mode, batch, log)
    key = 'peak_cuda_mb' if str(args.device).startswith('cuda') else 'peak_rss_mb'
    res['metric'] = key
    res['ratio'] = res['ours'][key] / res['torchvision'][key]
    dkey = key.replace('peak', 'delta')
    res['delta_ratio'] = res['ours'][dkey] / max(res['torchvision'][dkey], 1e-6)
    return res


# --------------------------------------------------------------------------------------------
# Profiling
# --------------------------------------------------------------------------------------------
def _stage_wrappers(name, model):
    """Wrap the big stages of a model in record_function ranges (profile mode only)."""
    from torch.profiler import record_function

    def wrap(obj, attr, label):
        fn = getattr(obj, attr)

        def wrapped(*a, **k):
            with record_function(label):
                return fn(*a, **k)
        setattr(obj, attr, wrapped)

    if name == 'ours':
        wrap(model.data_preprocessor, 'forward', 'STAGE preprocess')
        wrap(model.backbone, 'forward', 'STAGE backbone')
        wrap(model.neck, 'forward', 'STAGE neck')
        rpn, roi = model.rpn_head, model.roi_head
        for attr in ('loss_and_predict', 'predict'):
            wrap(rpn, attr, f'STAGE rpn ({attr})')
        for attr, label in (('forward', 'rpn.head convs'), ('loss_by_feat', 'rpn.targets+loss'),
                            ('predict_by_feat', 'rpn.proposals')):
            wrap(rpn, attr, f'STAGE   {label}')
        for attr in ('loss', 'predict'):
            wrap(roi, attr, f'STAGE roi ({attr})')
        wrap(roi.bbox_roi_extractor, 'forward', 'STAGE   roi.extract (RoIAlign)')
        wrap(roi.bbox_head, 'forward', 'STAGE   roi.box head fcs')
        for attr, label in (('loss_and_target', 'roi.targets+loss'), ('predict_by_feat', 'roi.postprocess')):
            if hasattr(roi.bbox_head, attr):
                wrap(roi.bbox_head, attr, f'STAGE   {label}')
        for attr, label in (('assigner', 'roi.assign'), ('sampler', 'roi.sample')):
            obj = getattr(roi, f'bbox_{attr}', None)
            if obj is not None:
                wrap(obj, 'assign' if attr == 'assigner' else 'sample', f'STAGE   {label}')
    else:
        wrap(model.transform, 'forward', 'STAGE preprocess')
        wrap(model.backbone.body, 'forward', 'STAGE backbone')
        wrap(model.backbone.fpn, 'forward', 'STAGE neck')
        wrap(model.rpn, 'forward', 'STAGE rpn')
        wrap(model.rpn.head, 'forward', 'STAGE   rpn.head convs')
        wrap(model.rpn.anchor_generator, 'forward', 'STAGE   rpn.anchors')
        wrap(model.rpn, 'filter_proposals', 'STAGE   rpn.proposals (filter)')
        wrap(model.rpn, 'assign_targets_to_anchors', 'STAGE   rpn.targets (assign)')
        wrap(model.rpn, 'compute_loss', 'STAGE   rpn.loss')
        wrap(model.roi_heads, 'forward', 'STAGE roi')
        wrap(model.roi_heads, 'select_training_samples', 'STAGE   roi.assign+sample')
        wrap(model.roi_heads.box_roi_pool, 'forward', 'STAGE   roi.extract (RoIAlign)')
        wrap(model.roi_heads.box_head, 'forward', 'STAGE   roi.box head fcs')
        wrap(model.roi_heads, 'postprocess_detections', 'STAGE   roi.postprocess')
        wrap(model.transform, 'postprocess', 'STAGE postprocess')


_STAGE_ORDER = ['preprocess', 'backbone', 'neck', 'rpn', 'roi', 'postprocess']


def _stage_sort_key(label):
    """Pipeline order; sub-stages ('STAGE   rpn.x') right after their stage ('STAGE rpn (...)')."""
    name = label[len('STAGE'):].strip()
    top = name.split('.')[0].split(' ')[0]
    is_sub = label.startswith('STAGE   ')
    rank = _STAGE_ORDER.index(top) if top in _STAGE_ORDER else len(_STAGE_ORDER)
    return rank, is_sub, name


def profile_models(steppers, kinds, iters, trace_dir=None, row_limit=20, log=print):
    """torch.profiler over ``iters`` steps of each model and kind; prints top ops by self CPU time."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU]
    if any(str(s.device).startswith('cuda') for s in steppers):
        acts.append(ProfilerActivity.CUDA)
    tables = {}
    for s in steppers:
        _stage_wrappers(s.name, s.model)
    for kind in kinds:
        for s in steppers:
            (s.infer_fn() if kind == 'infer' else s.train_fn())()   # warm-up outside the profile
            fns = [s.infer_fn() if kind == 'infer' else s.train_fn() for _ in range(iters)]
            with profile(activities=acts) as prof:
                for fn in fns:
                    fn()
            if trace_dir:
                os.makedirs(trace_dir, exist_ok=True)
                prof.export_chrome_trace(os.path.join(trace_dir, f'{s.name}_{kind}.json'))
            ka = prof.key_averages()
            stages = [e for e in ka if e.key.startswith('STAGE ')]
            stages.sort(key=lambda e: _stage_sort_key(e.key))
            ops = sorted([e for e in ka if not e.key.startswith('STAGE ')],
                         key=lambda e: e.self_cpu_time_total, reverse=True)
            total_self = sum(e.self_cpu_time_total for e in ops) or 1
            log(f'\n=== profile: {s.name} / {kind} ({iters} iters) ===')
            log('stage (inclusive CPU time per iter):')
            for e in stages:
                log(f'  {e.key:<32} {e.cpu_time_total / 1e3 / iters:10.1f} ms  (calls/iter {e.count / iters:g})')
            log(f'top {row_limit} ops by self CPU time (per iter):')
            log(f'  {"op":<44} {"self ms":>10} {"%":>6} {"calls":>8}')
            rows = []
            for e in ops[:row_limit]:
                rows.append(dict(op=e.key, self_cpu_ms=e.self_cpu_time_total / 1e3 / iters,
                                 calls=e.count / iters, pct=100. * e.self_cpu_time_total / total_self))
                log(f'  {e.key[:44]:<44} {rows[-1]["self_cpu_ms"]:10.1f} {rows[-1]["pct"]:6.1f} '
                    f'{rows[-1]["calls"]:8g}')
            tables[f'{s.name}_{kind}'] = dict(
                ops=rows, stages={e.key: e.cpu_time_total / 1e3 / iters for e in stages},
                total_self_cpu_ms=total_self / 1e3 / iters)
    return tables


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------
def parse_size(s):
    if isinstance(s, (tuple, list)):
        return tuple(int(v) for v in s)
    h, w = s.lower().split('x')
    return int(h), int(w)


def _load_avg():
    try:
        return os.getloadavg()
    except OSError:
        return None


def run_benchmark(args, log=print, models=None):
    """Everything the CLI measures; returns the result dict (also used by the tests).

    ``models``: an ``(ours, tv, info)`` triple from ``build_models`` to reuse (tests); built here
    from ``args`` when None.
    """
    device = args.device
    on_cuda = str(device).startswith('cuda')
    if args.iters is None:
        args.iters = 20 if on_cuda else 2
    if args.warmup is None:
        args.warmup = 5 if on_cuda else 1
    size = parse_size(args.size)
    args.size = size
    torch.set_num_threads(args.threads or torch.get_num_threads())
    flush_denormals()
    if models is None:
        cfg = load_config(args.config, args.cfg_options, args.exact_config)
        models = build_models(cfg, size, device, keep_resize=args.tv_resize)
    ours, tv, info = models
    if info['weights_not_shared']:
        log(f'WARNING: {len(info["weights_not_shared"])} of our tensors got no torchvision weight: '
            f'{info["weights_not_shared"][:6]} ...')
    result = dict(meta=dict(
        device=device, amp=args.amp, size=list(size), threads=torch.get_num_threads(),
        torch=torch.__version__, python=platform.python_version(), cpu=platform.processor() or platform.machine(),
        load_avg_start=_load_avg(), iters=args.iters, warmup=args.warmup,
        params_ours=count_params(ours), params_torchvision=count_params(tv),
        weights_copied=info['weights_copied'], weights_not_shared=info['weights_not_shared'],
        tv_resize_bypassed=not args.tv_resize,
        amp_dtype=None if not args.amp else ('float16' if device.startswith('cuda') else 'bfloat16')))
    log(f'device={device} amp={args.amp} size={size[0]}x{size[1]} threads={torch.get_num_threads()} '
        f'load={_load_avg()}')
    log(f'params (total, trainable): ours {count_params(ours)}  torchvision {count_params(tv)}')
    only = args.only

    def steppers(batch):
        data = make_batch(batch, size)
        return [Stepper('ours', ours, data, device, args.amp), Stepper('torchvision', tv, data, device, args.amp)]

    infer_batches = [args.batch] if args.batch else [1, 4]
    train_batch = args.batch or 2

    if args.profile:
        kinds = [only] if only in ('infer', 'train') else ['infer', 'train']
        result['profile'] = {}
        if 'infer' in kinds:
            result['profile'].update(profile_models(steppers(infer_batches[0]), ['infer'], args.profile_iters,
                                                    args.trace_dir, log=log))
        if 'train' in kinds:
            result['profile'].update(profile_models(steppers(train_batch), ['train'], args.profile_iters,
                                                    args.trace_dir, log=log))
        result['meta']['load_avg_end'] = _load_avg()
        return result

    if only in (None, 'infer'):
        for b in infer_batches:
            t = run_interleaved(steppers(b), 'infer', args.warmup, args.iters, f'infer b{b}', log)
            o, v = _summary(t['ours'], b), _summary(t['torchvision'], b)
            result[f'infer_b{b}'] = dict(batch=b, ours=o, torchvision=v,
                                         ratio=o['imgs_per_s'] / v['imgs_per_s'])
    if only in (None, 'train'):
        t = run_interleaved(steppers(train_batch), 'train', args.warmup, args.iters, f'train b{train_batch}', log)
        o, v = _summary(t['ours'], train_batch), _summary(t['torchvision'], train_batch)
        result[f'train_b{train_batch}'] = dict(batch=train_batch, ours=o, torchvision=v,
                                               speedup=v['median_s'] / o['median_s'])
    if only in (None, 'memory'):
        result['memory'] = {}
        modes = getattr(args, 'memory_modes', None) or ('infer', 'train')
        for mode, b in (('infer', infer_batches[0]), ('train', train_batch)):
            if mode in modes:
                result['memory'][f'{mode}_b{b}'] = measure_memory(ours, tv, mode, b, args, log)
    result['meta']['load_avg_end'] = _load_avg()
    return result


def format_table(result):
    rows = [('metric', 'ours', 'torchvision', 'ratio')]
    for key, r in result.items():
        if key.startswith('infer_b'):
            rows.append((f'inference images/s, batch {r["batch"]}', f'{r["ours"]["imgs_per_s"]:.3f}',
                         f'{r["torchvision"]["imgs_per_s"]:.3f}', f'{r["ratio"]:.3f} (ours/tv, >1 ours faster)'))
        elif key.startswith('train_b'):
            rows.append((f'train step s, batch {r["batch"]}', f'{r["ours"]["median_s"]:.3f}',
                         f'{r["torchvision"]["median_s"]:.3f}', f'{r["speedup"]:.3f} (speed-up tv/ours)'))
    for key, r in result.get('memory', {}).items():
        m = r['metric']
        unit = 'CUDA max allocated' if 'cuda' in m else 'peak RSS'
        rows.append((f'{unit} MiB, {key.replace("_b", " batch ")}', f'{r["ours"][m]:.0f}',
                     f'{r["torchvision"][m]:.0f}', f'{r["ratio"]:.3f} (ours/tv)'))
        d = m.replace('peak', 'delta')
        rows.append(('  of which step (over model+inputs)', f'{r["ours"][d]:.0f}',
                     f'{r["torchvision"][d]:.0f}', f'{r["delta_ratio"]:.3f} (ours/tv)'))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def build_parser():
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--amp', action='store_true', help='autocast: fp16 on CUDA, bf16 on CPU')
    p.add_argument('--batch', type=int, default=None,
                   help='override batch size (default: inference 1 and 4, training 2)')
    p.add_argument('--size', default='800x1333', help='image size HxW (default 800x1333)')
    # On a 2-core CPU one 800x1333 training step of either model takes tens of seconds, so the
    # CPU defaults are small enough to keep the whole default run within ~5 minutes.
    p.add_argument('--iters', type=int, default=None,
                   help='timed iterations per model and metric (default: cpu 2, cuda 20)')
    p.add_argument('--warmup', type=int, default=None,
                   help='warm-up iterations per model and metric (default: cpu 1, cuda 5)')
    p.add_argument('--memory-iters', type=int, default=1, help='steps run in each memory child')
    p.add_argument('--only', choices=['infer', 'train', 'memory'], default=None)
    p.add_argument('--memory-parallel', action='store_true',
                   help='run the two memory children side by side (peaks are per process)')
    p.add_argument('--memory-modes', nargs='+', choices=['infer', 'train'], default=None,
                   help='which steps the memory measurement covers (default: both)')
    p.add_argument('--json', default=None, help='write the result dict here')
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='override our config (torchvision follows), e.g. model.test_cfg.rpn.max_per_img=100')
    p.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch\'s)')
    p.add_argument('--exact-config', action='store_true',
                   help="benchmark our config as it is (BN affine weights trained, RoIAlign sampling_ratio=0, "
                        "MMDetection's numerics) instead of matching torchvision's work (frozen BN, 2x2 samples)")
    p.add_argument('--tv-resize', action='store_true',
                   help='keep torchvision\'s (scale 1.0) resize inside its transform')
    p.add_argument('--profile', action='store_true', help='torch.profiler top ops instead of timing')
    p.add_argument('--profile-iters', type=int, default=2)
    p.add_argument('--trace-dir', default=None, help='with --profile: write chrome traces here')
    # Internal: memory child process.
    p.add_argument('--_memory-child', dest='which', default=None, help=argparse.SUPPRESS)
    p.add_argument('--_state-dict', dest='state_dict', default=None, help=argparse.SUPPRESS)
    p.add_argument('--_mode', dest='mode', default=None, help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.which:
        memory_child(args)
        return None
    t0 = time.perf_counter()
    result = run_benchmark(args)
    if not args.profile:
        print('\n' + format_table(result))
        print(f'\nmachine: {result["meta"]["cpu"]}, {result["meta"]["threads"]} threads, device {args.device}, '
              f'load average start {result["meta"]["load_avg_start"]} end {result["meta"]["load_avg_end"]}')
        print('weights: torchvision init copied into ours '
              f'({result["meta"]["weights_copied"]} tensors); box classifier scaled so scores clear 0.05')
    print('\ndifferences that remain:')
    for d in REMAINING_DIFFERENCES:
        print(f'  - {d}')
    print(f'\ntotal wall time {time.perf_counter() - t0:.1f} s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
