# Faster R-CNN R50-FPN with mmcv's GeneralizedAttention (all four attention terms, "1111") after
# the 3x3 conv of every block of stages c4-c5 (MMDetection's config).
_base_ = '../faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(
                type='GeneralizedAttention',
                spatial_range=-1,
                num_heads=8,
                attention_type='1111',
                kv_stride=2),
            stages=(False, False, True, True),
            position='after_conv2')
    ]))
