# Faster R-CNN, ResNet-50 + FPN, 1x COCO, with the GIoU loss (Rezatofighi et al., 2019) as the RoI
# head's box loss: the head decodes its deltas and regresses the gt boxes themselves
# (reg_decoded_bbox=True). As MMDetection's configs/faster_rcnn/faster-rcnn_r50_fpn_giou_1x_coco.py.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    roi_head=dict(
        bbox_head=dict(
            reg_decoded_bbox=True,
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))))
