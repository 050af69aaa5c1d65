# The Double-Head R-CNN demo: configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py (same narrow ResNet-18 + FPN
# from scratch, data, schedule, optimiser and sample counts) with the RoI head of
# configs/double_heads/dh-faster-rcnn_r50_fpn_1x_coco.py at the demo's widths: classification on two fc
# layers, regression on four residual convs over RoIs enlarged 1.3x, both losses weighted 2:
#   python tools/demo.py --config configs/double_heads/dh-faster-rcnn_r18_fpn_demo.py --work-dir work_dirs/demo_dh
_base_ = '../faster_rcnn/faster-rcnn_r18_fpn_demo.py'
model = dict(
    roi_head=dict(
        type='DoubleHeadRoIHead',
        reg_roi_scale_factor=1.3,
        # The demo's box head (widths, classes, coder) turned into the double head.
        bbox_head=dict(
            type='DoubleConvFCBBoxHead',
            num_convs=4,
            num_fcs=2,
            conv_out_channels=256,  # 1024 at COCO widths; the demo's fc width here
            loss_cls=dict(loss_weight=2.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=2.0))))
