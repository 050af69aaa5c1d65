# Faster R-CNN, ResNet-50 + FPN, 1x COCO, with soft-NMS (Bodla et al., 2017) in the RoI head at
# test time: overlapping detections of a class get their scores decayed (linear, 1 - IoU above
# iou_threshold) instead of being removed. As MMDetection's
# configs/faster_rcnn/faster-rcnn_r50_fpn_soft-nms_1x_coco.py.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    test_cfg=dict(
        rcnn=dict(score_thr=0.05, nms=dict(type='soft_nms', iou_threshold=0.5), max_per_img=100)))
