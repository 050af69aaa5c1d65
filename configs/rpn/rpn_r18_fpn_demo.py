# The RPN demo: the region proposal network of configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py trained
# alone (a proposal detector: same narrow ResNet-18 + FPN from scratch, data, schedule and optimiser) and
# evaluated by class-agnostic proposal recall, COCO's AR@100/300/1000. The guided-anchoring and Cascade
# RPN demos (configs/guided_anchoring/ga-rpn_r18_fpn_demo.py, configs/cascade_rpn/cascade-rpn_r18_fpn_demo.py)
# swap only the head, so the three compare at the same budget:
#   python tools/demo.py --config configs/rpn/rpn_r18_fpn_demo.py --work-dir work_dirs/demo_rpn
_base_ = '../faster_rcnn/faster-rcnn_r18_fpn_demo.py'
model = dict(
    _delete_=True,
    type='RPN',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    rpn_head={{_base_.model.rpn_head}},
    train_cfg=dict(rpn={{_base_.model.train_cfg.rpn}}),
    # Up to 1000 proposals per image for AR@1000 (a 176 px image has about 7,800 anchors).
    test_cfg=dict(rpn=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                           min_bbox_size=0)))
val_evaluator = dict(metric='proposal', proposal_nums=(100, 300, 1000))
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='coco/AR@100'))
