# CrowdDet (Chu et al., CVPR 2020, "Detection in Crowded Scenes: One Proposal, Multiple Predictions"),
# ResNet-50 + FPN, 30 epochs on CrowdHuman, 8 GPUs x 2 images: every proposal predicts 2 (score, box)
# pairs, trained with the EMD loss (the cheaper matching of the 2 predictions to the proposal's 2
# best gts) and filtered by set NMS (boxes of one proposal never suppress each other).
# As MMDetection's configs/crowddet/crowddet-rcnn_r50_fpn_8xb2-30e_crowdhuman.py.
_base_ = [
    '../_base_/datasets/crowdhuman.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='CrowdDet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[103.53, 116.28, 123.675],
        std=[57.375, 57.12, 58.395],
        bgr_to_rgb=False,
        pad_size_divisor=64,
        # The whole batch is resized together (as the CrowdDet authors' data loader).
        batch_augments=[dict(type='BatchResize', scale=(1400, 800), pad_size_divisor=64)]),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        upsample_cfg=dict(mode='bilinear', align_corners=False)),
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        # Tall anchors (h/w = 1, 2, 3) for people, centred at (8, 8) of every cell.
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[1.0, 2.0, 3.0],
            strides=[4, 8, 16, 32, 64],
            centers=[(8, 8), (8, 8), (8, 8), (8, 8), (8, 8)]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0],
            clip_border=False),
        loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='MultiInstanceRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=-1, aligned=True, use_torchvision=True),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='MultiInstanceBBoxHead',
            with_refine=False,
            num_shared_fcs=2,
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            # Per-element losses: the EMD loss sums them per matching and takes the cheaper one.
            loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0, use_sigmoid=False, reduction='none'),
            loss_bbox=dict(type='SmoothL1Loss', loss_weight=1.0, reduction='none'))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=(0.3, 0.7),
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(nms_pre=2400, max_per_img=2000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=2),
        rcnn=dict(
            # Each proposal gets its 2 best gts (ignore regions by IoF); the gt and ignore boxes are
            # always appended to the proposals by the sampler.
            assigner=dict(
                type='MultiInstanceAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.3,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='MultiInsRandomSampler', num=512, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=1200, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=2),
        # Set NMS at IoU 0.5.
        rcnn=dict(nms=dict(type='nms', iou_threshold=0.5), score_thr=0.01, max_per_img=500)))

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=800),
    dict(type='MultiStepLR', begin=0, end=30, by_epoch=True, milestones=[24, 27], gamma=0.1),
]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=0.0001))
# lr 0.002 was set for 8 GPUs x 2 images; --auto-scale-lr rescales it to the actual batch.
auto_scale_lr = dict(enable=False, base_batch_size=16)
