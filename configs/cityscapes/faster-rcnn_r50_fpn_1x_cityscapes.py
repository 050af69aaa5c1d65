# Faster R-CNN, ResNet-50 + FPN on Cityscapes (8 classes), 8 x 8 epochs (RepeatDataset times=8),
# initialised from the COCO model. As MMDetection's configs/cityscapes/faster-rcnn_r50_fpn_1x_cityscapes.py.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/cityscapes_detection.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1x.py',
]
model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=8, loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))))
optim_wrapper = dict(optimizer=dict(lr=0.01))  # for a batch of 8
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=8, by_epoch=True, milestones=[7], gamma=0.1),
]
train_cfg = dict(max_epochs=8)  # x RepeatDataset(times=8) = 64 epochs
load_from = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r50_fpn_1x_coco/faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth'  # noqa
