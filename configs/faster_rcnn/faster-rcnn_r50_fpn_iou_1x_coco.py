# Faster R-CNN, ResNet-50 + FPN, 1x COCO, with the IoU loss (-log IoU, UnitBox) on decoded boxes in
# the RoI head. As MMDetection's configs/faster_rcnn/faster-rcnn_r50_fpn_iou_1x_coco.py.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    roi_head=dict(
        bbox_head=dict(
            reg_decoded_bbox=True,
            loss_bbox=dict(type='IoULoss', loss_weight=10.0))))
