# Faster R-CNN as in the paper (Ren et al., NeurIPS 2015, "Faster R-CNN: Towards Real-Time Object
# Detection with Region Proposal Networks"), VGG-16 version: one feature map (conv5_3, stride 16)
# shared by a single-level RPN and a Fast R-CNN head with RoIPool and VGG-16's own fc6/fc7.
# Values are the paper's (section 3.1.2 / 3.3 / 4.1); where it is silent, py-faster-rcnn's
# (its reference Caffe code), marked "py-faster-rcnn".
model = dict(
    type='FasterRCNN',
    # torchvision's ImageNet weights expect RGB in [0, 1] normalised with ImageNet's mean / std.
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=16),
    backbone=dict(
        type='VGG',
        depth=16,
        out_indices=(4, ),  # conv5_3 after its ReLU: 512 channels, stride 16
        with_last_pool=False,
        frozen_stages=2,  # conv1_x and conv2_x frozen: "fine-tune conv3_1 and up"
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://vgg16')),
    neck=None,
    rpn_head=dict(
        type='RPNHead',
        in_channels=512,
        feat_channels=512,  # 3x3 conv to 512 + ReLU, then the 1x1 objectness / box convs
        anchor_generator=dict(
            type='AnchorGenerator',
            # 9 anchors per location: 128, 256, 512 px (scales x stride 16) x aspect ratios 1:2, 1:1, 2:1
            scales=[8, 16, 32],
            ratios=[0.5, 1.0, 2.0],
            strides=[16]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        # py-faster-rcnn: smooth L1 with sigma 3 in the RPN, i.e. beta = 1 / sigma^2.
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIPool', output_size=7),
            out_channels=512,
            featmap_strides=[16]),
        bbox_head=dict(
            # Shared2FCBBoxHead with fc6 / fc7 (4096-d, ReLU) initialised from VGG-16's ImageNet
            # classifier.0 / classifier.3; N+1-way classifier and 4N box regressor.
            type='PretrainedFCBBoxHead',
            fc_checkpoint='torchvision://vgg16',
            fc_keys=('classifier.0', 'classifier.3'),
            dropout=0.5,  # VGG's drop6 / drop7, kept by Fast / Faster R-CNN
            in_channels=512,
            fc_out_channels=4096,
            roi_feat_size=7,
            num_classes=20,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            # Positive: IoU > 0.7 with a gt, or the best anchor of a gt; negative: IoU < 0.3 with all.
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            # 256 anchors per image, up to 1:1 positives : negatives.
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=0,  # anchors crossing the image border are ignored in training
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=12000,  # py-faster-rcnn's pre-NMS top-N in training
            max_per_img=2000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            # Foreground: IoU >= 0.5; background: IoU in [0.1, 0.5) (Fast R-CNN); the rest ignored.
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=(0.1, 0.5),
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1),
            # 128 RoIs per image, up to 25 % foreground.
            sampler=dict(
                type='RandomSampler',
                num=128,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000,  # py-faster-rcnn's pre-NMS top-N at test time
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.3),  # py-faster-rcnn's test NMS
            max_per_img=100)))
