# Grid R-CNN (Lu et al., CVPR 2019, with Grid R-CNN Plus's sub-regions), ResNet-50 + FPN, GN grid head,
# 25 epochs on COCO: the box head only classifies (with_reg=False); a 3x3 grid of points per box is
# predicted as heatmaps on 14x14 RoI features of the 2x-enlarged RoI and the box edges are their
# score-weighted means. As MMDetection's configs/grid_rcnn/grid-rcnn_r50_fpn_gn-head_2x_coco.py.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='GridRCNN',
    roi_head=dict(
        _delete_=True,
        type='GridRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            with_reg=False,
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False),
        grid_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        grid_head=dict(
            type='GridHead',
            grid_points=9,
            num_convs=8,
            in_channels=256,
            point_feat_channels=64,
            norm_cfg=dict(type='GN', num_groups=36),
            loss_grid=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=15))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=2000, max_per_img=2000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(pos_radius=1, max_num_grid=192)),
    test_cfg=dict(rcnn=dict(score_thr=0.03, nms=dict(type='nms', iou_threshold=0.3), max_per_img=100)))

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
max_epochs = 25
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 80, by_epoch=False, begin=0, end=3665),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[17, 23], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
