# Faster R-CNN, ResNet-50 + FPN, with Luminoth's second stage, for a user's own COCO-format data.
#
# Luminoth (Tryolabs' TensorFlow Faster R-CNN) pools RoIs by crop-and-resize (TensorFlow's
# tf.image.crop_and_resize to 14 x 14, then 2 x 2 max-pooling to 7 x 7) instead of RoIAlign, and
# trains the R-CNN on a small minibatch: 64 RoIs per image, up to 25 % foreground (IoU >= 0.5),
# background IoU in [0.1, 0.5), proposals below 0.1 ignored; SGD lr 0.001, then 0.0001.
#
# Your data: put COCO-format json files and images under data_root (see below), list your class
# names in `classes` (num_classes follows), then
#   python tools/train.py configs/faster_rcnn_paper/faster-rcnn_r50_fpn_luminoth.py
# Without the ImageNet checkpoint in torch's hub cache, add
#   --cfg-options model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/default_runtime.py',
]

classes = ('object', )  # your class names, in the order of the json's category ids
data_root = 'data/my_dataset/'
img_scale = (1024, 600)  # Luminoth: shorter side 600, longer side at most 1024

model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(_delete_=True, type='CropAndResize', output_size=7, crop_size=14)),
        bbox_head=dict(num_classes=len(classes))),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.5), min_pos_iou=0.5),
            sampler=dict(num=64, pos_fraction=0.25))))

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
# Luminoth trains on one image per step.
train_dataloader = dict(
    batch_size=1,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# lr 0.001 (for one image per step) with a short warm-up, divided by 10 after epoch 9.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[9], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005))
auto_scale_lr = dict(enable=False, base_batch_size=1)
