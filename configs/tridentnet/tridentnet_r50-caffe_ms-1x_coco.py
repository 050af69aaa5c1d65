# TridentNet R50-C4, 1x schedule, multi-scale training (shorter side 640-800): MMDetection's config.
_base_ = './tridentnet_r50-caffe_1x_coco.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
_base_.train_dataloader.dataset.pipeline = train_pipeline
