# Faster R-CNN R50-C4 (caffe-style ResNet-50, shared ResLayer head), 1x schedule on COCO 2017.
_base_ = [
    '../_base_/models/faster-rcnn_r50-caffe-c4.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]
