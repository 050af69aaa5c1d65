# The Cascade R-CNN demo: configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py (same narrow ResNet-18 + FPN
# from scratch, data, schedule, optimiser, RPN and sample counts) with its RoI head replaced by a
# three-stage cascade (IoU 0.5 / 0.6 / 0.7, class-agnostic regression, stds halved per stage, stage
# loss weights 1 / 0.5 / 0.25: MMDetection's cascade-rcnn_r50_fpn settings at the demo's widths), so
# the two demos compare the second stage at the same budget:
#   python tools/demo.py --config configs/cascade_rcnn/cascade-rcnn_r18_fpn_demo.py --work-dir work_dirs/demo_cascade
_base_ = '../faster_rcnn/faster-rcnn_r18_fpn_demo.py'

num_classes = 4


def _stage_head(stds):
    return dict(
        type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=256, roi_feat_size=7, num_classes=num_classes,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
        reg_class_agnostic=True,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))


def _stage_train(iou):
    return dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
                      match_low_quality=False, ignore_iof_thr=-1),
        # The Faster R-CNN demo's sample count and positive fraction, at every stage.
        sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=True),
        pos_weight=-1, debug=False)


model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        _delete_=True,
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
            out_channels=64,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=[_stage_head([0.1, 0.1, 0.2, 0.2]), _stage_head([0.05, 0.05, 0.1, 0.1]),
                   _stage_head([0.033, 0.033, 0.067, 0.067])]),
    train_cfg=dict(rcnn=[_stage_train(0.5), _stage_train(0.6), _stage_train(0.7)]))
