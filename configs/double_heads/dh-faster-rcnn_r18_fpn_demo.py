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
        bbox_head=dict(
            _delete_=True,
            type='DoubleConvFCBBoxHead',
            num_convs=4,
            num_fcs=2,
            in_channels=64,
            conv_out_channels=256,  # 1024 at COCO widths; the demo's fc width here
            fc_out_channels=256,
            roi_feat_size=7,
            num_classes=4,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=2.0))))
