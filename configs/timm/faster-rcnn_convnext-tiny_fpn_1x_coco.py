# Faster R-CNN with any timm model as the backbone: here ConvNeXt-T + FPN, 1x COCO.
# (MMDetection needs mmpretrain for TIMMBackbone; here it is built in, timm being the `timm` extra.
#  'mmpretrain.TIMMBackbone' is accepted too.)
# pretrained=True reads timm's weights from the Hugging Face / torch hub cache, or stops with the
# path to place them at; nothing is downloaded. checkpoint_path='/path/to/file' loads a local file.
# To use another model, take the neck's in_channels from the built backbone's `out_channels`
# (the TIMMBackbone docs show how).
_base_ = '../faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='TIMMBackbone',
        model_name='convnext_tiny',
        features_only=True,
        pretrained=True,
        out_indices=(0, 1, 2, 3),  # convnext's four stages, strides 4..32
        drop_path_rate=0.1),
    neck=dict(in_channels=[96, 192, 384, 768]))

# ConvNeXt is trained with AdamW (as MMDetection's ConvNeXt detectors are).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=None)
