# Faster R-CNN, ResNet-50 + FPN, 1x COCO, with an FCOS head as the RPN: anchor-free proposals from
# the points of P3-P7 (strides 8-128), scored by sigmoid(objectness) * sigmoid(centerness). As
# MMDetection's configs/faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

model = dict(
    # FCOS's pyramid: P3-P5 from C3-C5, P6/P7 by stride-2 convs on P5 (ReLU before the second).
    neck=dict(start_level=1, add_extra_convs='on_output', relu_before_extra_convs=True),
    rpn_head=dict(
        _delete_=True,  # none of RPNHead's anchor settings apply
        type='FCOSHead',
        num_classes=1,  # objectness; the detector sets 1 anyway
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64, 128])))

# A 1000-iteration warm-up: shorter warm-ups make the FCOS losses diverge to NaN.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
