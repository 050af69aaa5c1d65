# The demo: Faster R-CNN with a narrow ResNet-18 + FPN trained from scratch on the generated shapes
# dataset (tools/make_demo_data.py -> data/demo), sized to train in a few minutes on a 2-core CPU.
# `make demo` runs it (2 torch threads on 2+ cores, see tools/demo.py); README.md ("Measured numbers") has its
# wall time and mAP on a 2-core CPU.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/default_runtime.py',
]

classes = ('rectangle', 'ellipse', 'triangle', 'cross')
data_root = 'data/demo/'
img_scale = (176, 176)  # the generated images are 128-176 px

model = dict(
    # Channels-last (NHWC) batches: the convolutions' fast CPU kernels, and what makes bf16
    # autocast (tools/demo.py uses it where the CPU has native bf16) about 2x faster per step.
    data_preprocessor=dict(channels_last=True),
    backbone=dict(
        depth=18,
        base_channels=32,  # half of ResNet-18's width: stages of 32, 64, 128, 256 channels
        # No pretrained weights offline: BN trains from scratch, so nothing is frozen.
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # Objects are 16-72 px: anchors of 16-256 px (scale 4 x strides 4-64) instead of 32-512.
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        # A fixed 2x2 samples per bin: RoIAlign's backward on CPU costs per sample.
        bbox_roi_extractor=dict(roi_layer=dict(sampling_ratio=2), out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=len(classes))),
    # Few objects per small image: far fewer samples and proposals than COCO needs.
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64, pos_fraction=0.5))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

# 2 CPU cores: loading small PNGs in the main process is cheaper than feeding worker processes.
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

# 10 epochs when trained directly (tools/train.py); tools/demo.py sizes the schedule to the machine
# (16 epochs in bf16, 10-16 in fp32: as many as fit its training budget). On a 2-core AVX2 CPU (fp32,
# 2 threads, seed 0) 9 epochs gave mAP@0.5 0.888, 10 epochs 0.926 in 277 s; more steps help most.
# One validation, at the end (tools/demo.py skips it: its test step evaluates the same checkpoint).
max_epochs = 10
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# From scratch: AdamW with a short warm-up, then cosine decay to 1% of the peak.
optim_wrapper = dict(
    type='OptimWrapper',
    # fused: one kernel per parameter for the whole AdamW update (the per-op path costs ~10 ms a step here)
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4, fused=True),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min=1e-5),
]
auto_scale_lr = dict(enable=False, base_batch_size=2)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best='coco/bbox_mAP_50', rule='greater'),
    # Drawn predictions: only the confident ones (the 0.3 default clutters 128-176 px images).
    visualization=dict(draw=True, test_out_dir='vis', score_thr=0.5))
log_processor = dict(window_size=10)
randomness = dict(seed=0)
