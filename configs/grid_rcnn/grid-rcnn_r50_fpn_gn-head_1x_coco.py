# Grid R-CNN, ResNet-50 + FPN, GN grid head, 1x schedule (12 epochs) on COCO.
# As MMDetection's configs/grid_rcnn/grid-rcnn_r50_fpn_gn-head_1x_coco.py.
_base_ = './grid-rcnn_r50_fpn_gn-head_2x_coco.py'

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.0001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
