# Faster R-CNN, ResNet-50 + FPN, 1x COCO, with the Bounded IoU loss (Tychsen-Smith and Petersson,
# 2018) on decoded boxes in the RoI head. As MMDetection's
# configs/faster_rcnn/faster-rcnn_r50_fpn_bounded-iou_1x_coco.py.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    roi_head=dict(
        bbox_head=dict(
            reg_decoded_bbox=True,
            loss_bbox=dict(type='BoundedIoULoss', loss_weight=10.0))))
