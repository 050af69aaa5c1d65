# The guided-anchoring RPN demo: configs/rpn/rpn_r18_fpn_demo.py (same network, data, schedule,
# optimiser, sample counts and proposal settings) with the head of
# configs/guided_anchoring/ga-rpn_r50_fpn_1x_coco.py at the demo's widths and object sizes (approximate
# anchors of 16-25 px at stride 4, as the demo RPN's 16 px anchors), compared by AR@100/300/1000:
#   python tools/demo.py --config configs/guided_anchoring/ga-rpn_r18_fpn_demo.py --work-dir work_dirs/demo_ga_rpn
_base_ = '../rpn/rpn_r18_fpn_demo.py'
strides = [4, 8, 16, 32, 64]
model = dict(
    rpn_head=dict(
        _delete_=True,
        type='GARPNHead',
        in_channels=64,
        feat_channels=64,
        approx_anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3, ratios=[0.5, 1.0, 2.0], strides=strides),
        square_anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], scales=[4], strides=strides),
        anchor_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[0.07, 0.07, 0.14, 0.14]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[0.07, 0.07, 0.11, 0.11]),
        loc_filter_thr=0.01,
        loss_loc=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_shape=dict(type='BoundedIoULoss', beta=0.2, loss_weight=1.0),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(
            _delete_=True,
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=128, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
            ga_assigner=dict(type='ApproxMaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                             ignore_iof_thr=-1),
            ga_sampler=dict(type='RandomSampler', num=128, pos_fraction=0.5, neg_pos_ub=-1,
                            add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            center_ratio=0.2,
            ignore_ratio=0.5)),
    # GARPNHead (as in MMDetection) also reads nms_post: the proposals kept after NMS, per level.
    test_cfg=dict(rpn=dict(nms_post=1000)))
