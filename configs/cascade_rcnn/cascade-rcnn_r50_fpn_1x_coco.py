# Cascade R-CNN, ResNet-50 + FPN, 1x schedule on COCO 2017 (MMDetection's reference config).
_base_ = [
    '../_base_/models/cascade-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]
