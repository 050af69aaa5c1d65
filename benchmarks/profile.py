"""``--profile``: torch.profiler over a few steps of each model, with the pipeline stages
(preprocess, backbone, neck, rpn, roi and their parts) marked as record_function ranges."""
import os


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
