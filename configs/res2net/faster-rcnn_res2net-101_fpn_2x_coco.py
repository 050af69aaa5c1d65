# Faster R-CNN, Res2Net-101 (26w x 4s, v1d) + FPN, 2x (MMDetection's config).
# Pretrained: open-mmlab://res2net101_v1d_26w_4s, read from the torch hub cache.
_base_ = '../faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'
model = dict(
    backbone=dict(
        type='Res2Net',
        depth=101,
        scales=4,
        base_width=26,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://res2net101_v1d_26w_4s')))
