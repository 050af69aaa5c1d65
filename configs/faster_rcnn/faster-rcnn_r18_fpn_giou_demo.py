# The GIoU-loss demo: configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py (same network, data, schedule,
# optimiser and sample counts) with the RoI head regressing decoded boxes under the GIoU loss, as
# configs/faster_rcnn/faster-rcnn_r50_fpn_giou_1x_coco.py does for COCO, so the two demos compare the
# box loss at the same budget:
#   python tools/demo.py --config configs/faster_rcnn/faster-rcnn_r18_fpn_giou_demo.py --work-dir work_dirs/demo_giou
_base_ = './faster-rcnn_r18_fpn_demo.py'
model = dict(
    roi_head=dict(
        bbox_head=dict(
            reg_decoded_bbox=True,
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))))
