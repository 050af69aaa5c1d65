# SABL heads in all three stages of Cascade R-CNN, ResNet-50 + FPN, 1x COCO: each stage's sampled
# RoIs are refined for the next by decoding its side buckets (SABLHead.refine_bboxes), the test-time
# class scores are averaged over the stages. Bucket scale factors grow per stage (1.7, 1.5, 1.3) as the
# proposals tighten. As MMDetection's configs/sabl/sabl-cascade-rcnn_r50_fpn_1x_coco.py.
_base_ = [
    '../_base_/models/cascade-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]


def _sabl_stage(scale_factor):
    return dict(
        type='SABLHead',
        num_classes=80,
        cls_in_channels=256,
        reg_in_channels=256,
        roi_feat_size=7,
        reg_feat_up_ratio=2,
        reg_pre_kernel=3,
        reg_post_kernel=3,
        reg_pre_num=2,
        reg_post_num=1,
        cls_out_channels=1024,
        reg_offset_out_channels=256,
        reg_cls_out_channels=256,
        num_cls_fcs=1,
        num_reg_fcs=0,
        reg_class_agnostic=True,
        norm_cfg=None,
        bbox_coder=dict(type='BucketingBBoxCoder', num_buckets=14, scale_factor=scale_factor),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox_reg=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.0))


model = dict(roi_head=dict(bbox_head=[_sabl_stage(1.7), _sabl_stage(1.5), _sabl_stage(1.3)]))
del _sabl_stage
