"""Component benchmarks of the RPN's box plumbing, ours against two peers, on identical inputs
(``tools/benchmark_components.py``).

1. Anchor targets (assign + sample + encode) for a batch of images with FPN anchors
   (800x1333 padded to 800x1344: 5 levels x 3 anchors per location, ~268k anchors per image) and
   ``--num-gts`` random gt boxes per image:
   * ours: ``RPNHead.targets_per_image`` (valid flags, MaxIoUAssigner + RandomSampler +
     DeltaXYWHBBoxCoder per image), what ``RPNHead.loss_by_feat`` computes before its losses;
   * plain: a straightforward per-image torch reference written here (IoU matrix, max, thresholds,
     low-quality matches by a loop over gts, randperm sampling, encode);
   * torchvision: ``RegionProposalNetwork.assign_targets_to_anchors`` (Matcher) + its
     ``BoxCoder.encode`` + ``BalancedPositiveNegativeSampler``, as its RPN forward does.
   Assignments of ours and plain are compared exactly (gt index of every anchor); positive /
   negative counts of all three are reported (sampled subsets are random).

2. Proposals from the same objectness logits and deltas (same anchors): per-level top-k, decode,
   clip, small-box removal, per-level batched NMS, top ``max_per_img``:
   * ours: ``RPNHead.predict_by_feat`` with ``train_cfg.rpn_proposal`` (2000/1000) or
     ``test_cfg.rpn`` (1000/1000);
   * torchvision: ``BoxCoder.decode`` of all anchors + ``RegionProposalNetwork.filter_proposals``
     (its forward's path) with the same counts.

Timings are interleaved (A B C, C B A, ...) after warm-up; medians and ratios peer/ours
(> 1: ours faster) are printed, and ``--json`` writes everything.
"""
import argparse
import json
import math
import os
import statistics
import time

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'faster-rcnn_r50_fpn.py')


# --------------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------------
def build_rpn_heads(cfg):
    """Our RPNHead (with train/test cfgs as the detector hands them) and a torchvision RPN set alike."""
    from mmengine.registry import init_default_scope
    init_default_scope('rcnn_plugins')
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.rpn import RegionProposalNetwork
    from torchvision.models.detection.rpn import RPNHead as TVRPNHead

    from rcnn_plugins.registry import MODELS

    m = cfg.model
    ours = MODELS.build(dict(m.rpn_head, train_cfg=m.train_cfg.rpn, test_cfg=m.test_cfg.rpn))
    tr, te = m.train_cfg, m.test_cfg
    ag = m.rpn_head.anchor_generator
    sizes = tuple((s * ag.scales[0],) for s in ag.strides)
    tv = RegionProposalNetwork(
        AnchorGenerator(sizes, (tuple(ag.ratios),) * len(sizes)),
        TVRPNHead(m.rpn_head.in_channels, len(ag.ratios)),
        fg_iou_thresh=tr.rpn.assigner.pos_iou_thr, bg_iou_thresh=tr.rpn.assigner.neg_iou_thr,
        batch_size_per_image=tr.rpn.sampler.num, positive_fraction=tr.rpn.sampler.pos_fraction,
        pre_nms_top_n=dict(training=tr.rpn_proposal.nms_pre, testing=te.rpn.nms_pre),
        post_nms_top_n=dict(training=tr.rpn_proposal.max_per_img, testing=te.rpn.max_per_img),
        nms_thresh=te.rpn.nms.iou_threshold)
    return ours, tv


def make_inputs(ours_head, batch, size, num_gts, seed=0, pad_divisor=32):
    """Anchors (ours, for every model), gt boxes, valid flags and random RPN outputs."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    ph, pw = math.ceil(h / pad_divisor) * pad_divisor, math.ceil(w / pad_divisor) * pad_divisor
    strides = [s[0] if isinstance(s, (tuple, list)) else s for s in ours_head.prior_generator.strides]
    featmap_sizes = [(math.ceil(ph / s), math.ceil(pw / s)) for s in strides]
    anchors_lvl = ours_head.prior_generator.grid_priors(featmap_sizes, device='cpu')
    anchors = torch.cat(anchors_lvl)
    flags = torch.cat(ours_head.prior_generator.valid_flags(featmap_sizes, (ph, pw), device='cpu'))
    gts = []
    for _ in range(batch):
        bw = (torch.rand(num_gts, generator=g) * 0.3 + 0.02) * w
        bh = (torch.rand(num_gts, generator=g) * 0.3 + 0.02) * h
        x1 = torch.rand(num_gts, generator=g) * (w - bw)
        y1 = torch.rand(num_gts, generator=g) * (h - bh)
        gts.append(torch.stack([x1, y1, x1 + bw, y1 + bh], 1))
    a = ours_head.num_base_priors if isinstance(ours_head.num_base_priors, int) else ours_head.num_base_priors[0]
    cls_scores = [torch.randn(batch, a, fh, fw, generator=g) for fh, fw in featmap_sizes]
    bbox_preds = [torch.randn(batch, a * 4, fh, fw, generator=g) * 0.2 for fh, fw in featmap_sizes]
    metas = [dict(img_shape=(h, w), pad_shape=(ph, pw), batch_input_shape=(ph, pw), scale_factor=(1., 1.))
             for _ in range(batch)]
    return dict(anchors=anchors, anchors_lvl=anchors_lvl, flags=flags, gts=gts, cls_scores=cls_scores,
                bbox_preds=bbox_preds, metas=metas, featmap_sizes=featmap_sizes, size=size)


# --------------------------------------------------------------------------------------------
# 1. Anchor targets
# --------------------------------------------------------------------------------------------
def plain_iou(a, b):
    """(G, 4) x (N, 4) -> (G, N) IoU, written out."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=torch.finfo(torch.float32).eps)


def plain_assign(anchors, gt, pos_thr, neg_thr, min_pos_iou):
    """MMDetection's MaxIoUAssigner rules, straightforwardly: gt index per anchor (-1/0/k+1)."""
    iou = plain_iou(gt, anchors)
    max_iou, argmax = iou.max(dim=0)
    gt_inds = torch.full((anchors.size(0),), -1, dtype=torch.long)
    gt_inds[(max_iou >= 0) & (max_iou < neg_thr)] = 0
    pos = max_iou >= pos_thr
    gt_inds[pos] = argmax[pos] + 1
    gt_max = iou.max(dim=1).values
    for k in range(gt.size(0)):             # low-quality matches: each gt claims its best anchors
        if gt_max[k] >= min_pos_iou:
            gt_inds[iou[k] == gt_max[k]] = k + 1
    return gt_inds


def plain_encode(anchors, gt):
    """Delta (dx, dy, dw, dh) of gt w.r.t. anchors, means 0 / stds 1."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    return torch.stack([(gx - ax) / aw, (gy - ay) / ah, torch.log(gw / aw), torch.log(gh / ah)], 1)


def plain_targets(anchors, flags, gt, assigner_cfg, sampler_cfg):
    """Per-image targets over all anchors: labels (0 object / 1 background), weights, deltas."""
    valid = flags.nonzero().squeeze(1)
    a = anchors[valid]
    gt_inds = plain_assign(a, gt, assigner_cfg.pos_iou_thr, assigner_cfg.neg_iou_thr, assigner_cfg.min_pos_iou)
    pos = (gt_inds > 0).nonzero().squeeze(1)
    neg = (gt_inds == 0).nonzero().squeeze(1)
    num_pos = min(pos.numel(), int(sampler_cfg.num * sampler_cfg.pos_fraction))
    pos = pos[torch.randperm(pos.numel())[:num_pos]]
    num_neg = min(neg.numel(), sampler_cfg.num - num_pos)
    neg = neg[torch.randperm(neg.numel())[:num_neg]]
    n = anchors.size(0)
    labels = torch.ones(n, dtype=torch.long)
    weights = torch.zeros(n)
    deltas = torch.zeros(n, 4)
    labels[valid[pos]] = 0
    weights[valid[pos]] = 1
    weights[valid[neg]] = 1
    deltas[valid[pos]] = plain_encode(a[pos], gt[gt_inds[pos] - 1])
    return labels, weights, deltas, gt_inds, num_pos, num_neg


def ours_targets_fn(head, inp):
    """What RPNHead.loss_by_feat does for targets (valid flags + assign + sample + encode per
    image), through the head's public ``targets_per_image``."""
    from mmengine.structures import InstanceData
    gts = [InstanceData(bboxes=b, labels=torch.zeros(b.size(0), dtype=torch.long)) for b in inp['gts']]

    def run():
        return head.targets_per_image(inp['anchors'], inp['featmap_sizes'], gts, inp['metas'])
    return run


def plain_targets_fn(head, inp):
    a_cfg, s_cfg = head.train_cfg['assigner'], head.train_cfg['sampler']

    def run():
        return [plain_targets(inp['anchors'], inp['flags'], gt, a_cfg, s_cfg) for gt in inp['gts']]
    return run


def tv_targets_fn(tv_rpn, inp):
    """torchvision RPN's training path: match, encode every anchor, balanced sampling."""
    targets = [dict(boxes=b) for b in inp['gts']]
    anchors = [inp['anchors'] for _ in inp['gts']]

    def run():
        labels, matched_gt_boxes = tv_rpn.assign_targets_to_anchors(anchors, targets)
        regression_targets = tv_rpn.box_coder.encode(matched_gt_boxes, anchors)
        pos, neg = tv_rpn.fg_bg_sampler(labels)
        return labels, regression_targets, pos, neg
    return run


def check_targets(head, tv_rpn, inp):
    """Exact assignment agreement ours vs plain; positive/negative counts of all three."""
    from mmengine.structures import InstanceData
    a_cfg = head.train_cfg['assigner']
    report = []
    for i, gt in enumerate(inp['gts']):
        anchors = inp['anchors'][inp['flags']]
        ours = head.assigner.assign(InstanceData(priors=anchors),
                                    InstanceData(bboxes=gt, labels=torch.zeros(gt.size(0), dtype=torch.long)))
        plain = plain_assign(anchors, gt, a_cfg.pos_iou_thr, a_cfg.neg_iou_thr, a_cfg.min_pos_iou)
        mismatched = int((ours.gt_inds != plain).sum())
        tv_labels, _ = tv_rpn.assign_targets_to_anchors([anchors], [dict(boxes=gt)])
        tv_labels = tv_labels[0]
        row = dict(image=i, anchors=int(anchors.size(0)), gts=int(gt.size(0)), assign_mismatches=mismatched,
                   pos=dict(ours=int((ours.gt_inds > 0).sum()), plain=int((plain > 0).sum()),
                            torchvision=int((tv_labels == 1).sum())),
                   neg=dict(ours=int((ours.gt_inds == 0).sum()), plain=int((plain == 0).sum()),
                            torchvision=int((tv_labels == 0).sum())))
        # Sampled counts follow from the pools: min(pos, num * frac) positives, the rest negatives.
        s = head.train_cfg['sampler']
        for name in ('ours', 'plain', 'torchvision'):
            p = min(row['pos'][name], int(s.num * s.pos_fraction))
            row.setdefault('sampled_pos', {})[name] = p
            row.setdefault('sampled_neg', {})[name] = min(row['neg'][name], s.num - p)
        report.append(row)
    # The sampled counts really produced by each implementation (first image).
    o = ours_targets_fn(head, inp)()[0]
    pl = plain_targets_fn(head, inp)()[0]
    tvl, _, tpos, tneg = tv_targets_fn(tv_rpn, inp)()
    report[0]['measured_sampled'] = dict(
        ours=[int((o[1] > 0).sum() - (o[0][o[1] > 0] == head.num_classes).sum()),
              int((o[0][o[1] > 0] == head.num_classes).sum())],
        plain=[pl[4], pl[5]], torchvision=[int(tpos[0].sum()), int(tneg[0].sum())])
    return report


# --------------------------------------------------------------------------------------------
# 2. Proposals
# --------------------------------------------------------------------------------------------
def ours_proposals_fn(head, inp, cfg):
    def run():
        return head.predict_by_feat(inp['cls_scores'], inp['bbox_preds'], batch_img_metas=inp['metas'], cfg=cfg)
    return run


def tv_proposals_fn(tv_rpn, inp, training):
    """Same as torchvision's RPN forward after the head: flatten, decode all anchors, filter."""
    from torchvision.models.detection.rpn import concat_box_prediction_layers
    b = len(inp['metas'])
    anchors = [inp['anchors'] for _ in range(b)]
    num_per_level = [s[0] * s[1] * (inp['cls_scores'][0].size(1)) for s in inp['featmap_sizes']]
    image_sizes = [tuple(m['img_shape']) for m in inp['metas']]

    def run():
        tv_rpn.train(training)
        objectness, deltas = concat_box_prediction_layers(inp['cls_scores'], inp['bbox_preds'])
        proposals = tv_rpn.box_coder.decode(deltas.detach(), anchors).view(b, -1, 4)
        return tv_rpn.filter_proposals(proposals, objectness, image_sizes, num_per_level)
    return run


def check_proposals(ours_out, tv_out):
    """Counts per image and how many of ours' top boxes torchvision also kept (IoU > 0.99)."""
    rows = []
    for o, (tb, ts) in zip(ours_out, zip(*tv_out)):
        k = min(100, len(o.bboxes), len(tb))
        if k:
            match = (plain_iou(o.bboxes[:k], tb).max(dim=1).values > 0.99).float().mean().item()
        else:
            match = float('nan')
        rows.append(dict(ours=int(len(o.bboxes)), torchvision=int(len(tb)), top100_match=match))
    return rows


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------
def interleave(fns, warmup, iters, label, log=print):
    """fns: {name: callable}. Rounds alternate the order; returns {name: [seconds]}."""
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(warmup + iters):
        for n in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[n]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[n].append(dt)
    meds = {n: statistics.median(t) for n, t in times.items()}
    log(f'  [{label}] ' + '  '.join(f'{n} {meds[n] * 1e3:8.1f} ms' for n in names))
    return times


def _summ(times):
    meds = {n: statistics.median(t) for n, t in times.items()}
    return dict(median_ms={n: v * 1e3 for n, v in meds.items()}, times_ms={n: [x * 1e3 for x in t]
                                                                          for n, t in times.items()},
                ratio_peer_over_ours={n: meds[n] / meds['ours'] for n in meds if n != 'ours'})


def run_components(args, log=print):
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    size = tuple(int(v) for v in args.size.lower().split('x')) if isinstance(args.size, str) else tuple(args.size)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    torch.manual_seed(0)
    head, tv_rpn = build_rpn_heads(cfg)
    inp = make_inputs(head, args.batch, size, args.num_gts)
    result = dict(meta=dict(size=list(size), batch=args.batch, num_gts=args.num_gts,
                            anchors_per_image=int(inp['anchors'].size(0)), threads=torch.get_num_threads(),
                            torch=torch.__version__, iters=args.iters, warmup=args.warmup,
                            load_avg_start=os.getloadavg()))
    log(f'size={size[0]}x{size[1]} batch={args.batch} anchors/image={inp["anchors"].size(0)} '
        f'gts/image={args.num_gts} threads={torch.get_num_threads()} load={os.getloadavg()}')

    with torch.no_grad():
        if args.only in (None, 'targets'):
            result['targets_check'] = check_targets(head, tv_rpn, inp)
            for row in result['targets_check']:
                log(f'  image {row["image"]}: assignment mismatches ours vs plain = {row["assign_mismatches"]}; '
                    f'pos {row["pos"]}; neg {row["neg"]}')
            log(f'  sampled (pos, neg) image 0: {result["targets_check"][0]["measured_sampled"]}')
            t = interleave(dict(ours=ours_targets_fn(head, inp), plain=plain_targets_fn(head, inp),
                                torchvision=tv_targets_fn(tv_rpn, inp)),
                           args.warmup, args.iters, f'anchor targets b{args.batch}', log)
            result['targets'] = _summ(t)
        if args.only in (None, 'proposals'):
            for mode, pcfg in (('train', cfg.model.train_cfg.rpn_proposal), ('test', cfg.model.test_cfg.rpn)):
                o_fn, t_fn = ours_proposals_fn(head, inp, pcfg), tv_proposals_fn(tv_rpn, inp, mode == 'train')
                check = check_proposals(o_fn(), t_fn())
                log(f'  proposals {mode} ({pcfg.nms_pre}/{pcfg.max_per_img}): counts/agreement {check}')
                t = interleave(dict(ours=o_fn, torchvision=t_fn), args.warmup, args.iters,
                               f'proposals {mode} b{args.batch}', log)
                result[f'proposals_{mode}'] = dict(_summ(t), check=check, nms_pre=pcfg.nms_pre,
                                                   max_per_img=pcfg.max_per_img)
    result['meta']['load_avg_end'] = os.getloadavg()
    return result


def format_table(result):
    rows = [('component', 'ours ms', 'plain ms', 'torchvision ms', 'tv/ours', 'plain/ours')]
    for key in ('targets', 'proposals_train', 'proposals_test'):
        if key not in result:
            continue
        m, r = result[key]['median_ms'], result[key]['ratio_peer_over_ours']
        rows.append((key, f'{m["ours"]:.1f}', f'{m["plain"]:.1f}' if 'plain' in m else '-',
                     f'{m["torchvision"]:.1f}', f'{r["torchvision"]:.2f}',
                     f'{r["plain"]:.2f}' if 'plain' in r else '-'))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines) + '\n(ratio peer/ours > 1: ours faster)'


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--size', default='800x1333', help='image size HxW')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--num-gts', type=int, default=50)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--only', choices=['targets', 'proposals'], default=None)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--json', default=None)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    result = run_components(args)
    print('\n' + format_table(result))
    print(f'load average start {result["meta"]["load_avg_start"]} end {result["meta"]["load_avg_end"]}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
