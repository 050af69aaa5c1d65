# Faster R-CNN R50-FPN with deformable convs (DCN, mmcv's DeformConv2dPack layout, run by
# torchvision.ops.deform_conv2d) in the 3x3 convs of stages c3-c5 (MMDetection's config).
_base_ = '../faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
