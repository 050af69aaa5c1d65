# The Cascade RPN demo: configs/rpn/rpn_r18_fpn_demo.py (same network, data, schedule, optimiser and
# proposal settings) with the two-stage head of configs/cascade_rpn/cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py
# at the demo's widths and object sizes (one 16 px square anchor per location at stride 4), compared by
# AR@100/300/1000:
#   python tools/demo.py --config configs/cascade_rpn/cascade-rpn_r18_fpn_demo.py --work-dir work_dirs/demo_cascade_rpn
_base_ = '../rpn/rpn_r18_fpn_demo.py'
model = dict(
    rpn_head=dict(
        _delete_=True,
        type='CascadeRPNHead',
        num_stages=2,
        stages=[
            # Stage 1: one square anchor per location, a dilated conv, box regression only.
            dict(
                type='StageCascadeRPNHead',
                in_channels=64,
                feat_channels=64,
                anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[1.0], strides=[4, 8, 16, 32, 64]),
                adapt_cfg=dict(type='dilation', dilation=3),
                bridged_feature=True,
                with_cls=False,
                reg_decoded_bbox=True,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=(.0, .0, .0, .0),
                                target_stds=(0.1, 0.1, 0.5, 0.5)),
                loss_bbox=dict(type='IoULoss', linear=True, loss_weight=10.0)),
            # Stage 2: anchors = stage-1 boxes, conv sampling moved onto them (offsets), objectness.
            dict(
                type='StageCascadeRPNHead',
                in_channels=64,
                feat_channels=64,
                adapt_cfg=dict(type='offset'),
                bridged_feature=False,
                with_cls=True,
                reg_decoded_bbox=True,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=(.0, .0, .0, .0),
                                target_stds=(0.05, 0.05, 0.1, 0.1)),
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type='IoULoss', linear=True, loss_weight=10.0)),
        ]),
    train_cfg=dict(
        rpn=[
            dict(assigner=dict(type='RegionAssigner', center_ratio=0.2, ignore_ratio=0.5),
                 allowed_border=-1, pos_weight=-1, debug=False),
            dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.7, min_pos_iou=0.3,
                               ignore_iof_thr=-1),
                 sampler=dict(type='RandomSampler', num=128, pos_fraction=0.5, neg_pos_ub=-1,
                              add_gt_as_proposals=False),
                 allowed_border=-1, pos_weight=-1, debug=False),
        ]))
