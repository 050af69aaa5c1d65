# The Dynamic R-CNN demo: configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py (same narrow ResNet-18 + FPN
# from scratch, data, schedule, optimiser and sample counts) with the RoI head of
# configs/dynamic_rcnn/dynamic-rcnn_r50_fpn_1x_coco.py: the RoI IoU threshold and the SmoothL1 beta follow
# the training statistics, updated every 100 iterations:
#   python tools/demo.py --config configs/dynamic_rcnn/dynamic-rcnn_r18_fpn_demo.py --work-dir work_dirs/demo_dynamic
_base_ = '../faster_rcnn/faster-rcnn_r18_fpn_demo.py'
model = dict(
    roi_head=dict(
        type='DynamicRoIHead',
        # The beta that follows the statistics is SmoothL1's (the Faster R-CNN demo uses L1).
        bbox_head=dict(loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))),
    train_cfg=dict(
        rpn_proposal=dict(nms=dict(iou_threshold=0.85)),
        rcnn=dict(
            dynamic_rcnn=dict(
                # COCO's top-75 IoUs of 512 RoIs and top-10 losses of up to 128 positives, scaled to the
                # demo's 64 RoIs (up to 32 positives) per image.
                iou_topk=9,
                beta_topk=3,
                update_iter_interval=100,
                initial_iou=0.4,
                initial_beta=1.0))),
    test_cfg=dict(rpn=dict(nms=dict(iou_threshold=0.85))))
