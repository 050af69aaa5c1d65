# Fast R-CNN, ResNet-50 + FPN, 1x schedule on COCO 2017, trained and tested on precomputed proposals
# (MMDetection 3.x's fast-rcnn_r50_fpn_1x_coco.py). Make the proposal files with a trained RPN or
# Faster R-CNN, e.g. (and the same with --split val for rpn_r50_fpn_1x_val2017.pkl)
#   python tools/misc/gen_proposals.py RPN_CONFIG RPN_CKPT --split train \
#       --out data/coco/proposals/rpn_r50_fpn_1x_train2017.pkl
_base_ = [
    '../_base_/models/fast-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

# LoadProposals before Resize / RandomFlip, which transform the proposals like the ground truth.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', num_max_proposals=2000),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', num_max_proposals=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# Proposal files are relative to data_root.
train_dataloader = dict(
    dataset=dict(proposal_file='proposals/rpn_r50_fpn_1x_train2017.pkl', pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(proposal_file='proposals/rpn_r50_fpn_1x_val2017.pkl', pipeline=test_pipeline))
test_dataloader = val_dataloader
