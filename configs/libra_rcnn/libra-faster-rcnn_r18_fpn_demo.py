# The Libra R-CNN demo: configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py (same narrow ResNet-18 + FPN
# from scratch, data, schedule, optimiser and sample counts) with Libra R-CNN's three changes at the
# demo's widths: a balanced feature pyramid (BFP after the FPN), IoU-balanced negative and
# instance-balanced positive RoI sampling, and the balanced L1 box loss (settings of
# configs/libra_rcnn/libra-faster-rcnn_r50_fpn_1x_coco.py):
#   python tools/demo.py --config configs/libra_rcnn/libra-faster-rcnn_r18_fpn_demo.py --work-dir work_dirs/demo_libra
_base_ = '../faster_rcnn/faster-rcnn_r18_fpn_demo.py'
model = dict(
    neck=[
        dict(type='FPN', in_channels=[32, 64, 128, 256], out_channels=64, num_outs=5),
        dict(type='BFP', in_channels=64, num_levels=5, refine_level=2, refine_type='non_local'),
    ],
    roi_head=dict(
        bbox_head=dict(
            loss_bbox=dict(_delete_=True, type='BalancedL1Loss', alpha=0.5, gamma=1.5, beta=1.0, loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(sampler=dict(neg_pos_ub=5), allowed_border=-1),
        rcnn=dict(
            sampler=dict(
                _delete_=True,
                type='CombinedSampler',
                num=64,
                pos_fraction=0.5,
                add_gt_as_proposals=True,
                pos_sampler=dict(type='InstanceBalancedPosSampler'),
                neg_sampler=dict(type='IoUBalancedNegSampler', floor_thr=-1, floor_fraction=0, num_bins=3)))))
