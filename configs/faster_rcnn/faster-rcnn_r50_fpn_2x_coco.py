# Faster R-CNN, ResNet-50 + FPN, 2x schedule on COCO 2017 (MMDetection's config of the same name).
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_2x.py',
    '../_base_/default_runtime.py',
]
