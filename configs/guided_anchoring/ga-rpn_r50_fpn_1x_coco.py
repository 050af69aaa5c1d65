# The guided-anchoring RPN alone (a proposal detector), ResNet-50 + FPN, 1x COCO, evaluated by
# proposal recall (AR@100/300/1000). As MMDetection's configs/guided_anchoring/ga-rpn_r50_fpn_1x_coco.py
# (there on top of rpn/rpn_r50_fpn_1x_coco.py). Its proposals feed Fast R-CNN through
# tools/misc/gen_proposals.py.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # The Faster R-CNN base's backbone, neck and preprocessor; its RoI head and cfgs are dropped.
    _delete_=True,
    type='RPN',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    rpn_head=dict(
        type='GARPNHead',
        in_channels=256,
        feat_channels=256,
        approx_anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=8, scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        square_anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], scales=[8], strides=[4, 8, 16, 32, 64]),
        anchor_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[0.07, 0.07, 0.14, 0.14]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[0.07, 0.07, 0.11, 0.11]),
        loc_filter_thr=0.01,
        loss_loc=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_shape=dict(type='BoundedIoULoss', beta=0.2, loss_weight=1.0),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                          ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            ga_assigner=dict(type='ApproxMaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                             ignore_iof_thr=-1),
            ga_sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                            add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            center_ratio=0.2,
            ignore_ratio=0.5)),
    test_cfg=dict(rpn=dict(nms_pre=2000, nms_post=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                           min_bbox_size=0)))
val_evaluator = dict(metric='proposal_fast')
test_evaluator = val_evaluator
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
