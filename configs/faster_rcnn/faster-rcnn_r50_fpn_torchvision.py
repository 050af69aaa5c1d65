# Faster R-CNN R50-FPN set to compute what torchvision's `fasterrcnn_resnet50_fpn` computes, so that
# its weights, converted by tools/model_converters/torchvision2rcnn.py, give torchvision's detections
# (docs/TORCHVISION.md lists every setting and the differences that remain). A model fine-tuned from
# this config goes back with tools/model_converters/rcnn2torchvision.py.
#
# Labels: torchvision's 91 outputs are background (0) and COCO category ids 1..90 (10 of them unused,
# 'N/A'); ours are label = torchvision label - 1 = COCO category id - 1, so num_classes=90.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

model = dict(
    # torchvision normalises [0, 1] RGB with ImageNet mean/std: the same numbers times 255 (the base),
    # and pads the batch to a multiple of 32 with zeros after normalisation (the base).
    backbone=dict(
        # torchvision's pretrained detectors run FrozenBatchNorm2d with eps=0 (overwrite_eps(model, 0.0))
        # and train layer2..layer4 (trainable_backbone_layers=3: stem and layer1 frozen).
        norm_cfg=dict(type='BN', eps=0., requires_grad=False),
        frozen_stages=1,
        init_cfg=None),
    rpn_head=dict(
        anchor_generator=dict(
            # sizes 32..512, one per level, ratios 0.5/1/2, rounded to whole pixels, laid out with
            # torchvision's strides (input size // feature size).
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64],
            round_base_anchors=True,
            stride_from_input_size=True)),
    roi_head=dict(
        bbox_roi_extractor=dict(
            # MultiScaleRoIAlign: 2x2 samples, aligned=False, canonical scale 224 at level 4.
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2, aligned=False),
            canonical_scale=224,
            canonical_level=4),
        # box coder weights (10, 10, 5, 5) are stds (0.1, 0.1, 0.2, 0.2), the base's.
        bbox_head=dict(num_classes=90)),
    train_cfg=dict(
        # rpn_pre_nms_top_n_train / rpn_post_nms_top_n_train
        rpn_proposal=dict(nms_pre=2000, max_per_img=2000, min_bbox_size=1e-3)),
    test_cfg=dict(
        # rpn_pre_nms_top_n_test (per level) / rpn_post_nms_top_n_test, NMS 0.7, min_size 1e-3
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=1e-3),
        # box_score_thresh, box_nms_thresh, box_detections_per_img, remove_small_boxes(1e-2)
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100, min_bbox_size=1e-2)))

# GeneralizedRCNNTransform(min_size=800, max_size=1333): bilinear resize of the float image.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True, backend='torch'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True, backend='torch'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
