# The paper's Faster R-CNN: VGG-16, trained end to end ("approximate joint training") on PASCAL VOC
# 2007 trainval, tested on VOC 2007 test.
#
# Target: 69.9 % mAP on VOC 2007 test (Ren et al. 2015, Table 3: RPN + VGG-16, "07" training data,
# 300 proposals), the number this config is meant to reproduce on a GPU. Needs ImageNet weights:
# torchvision's vgg16-397923af.pth in <torch hub dir>/checkpoints/ (it is never downloaded).
#
# Schedule keys (the paper's default, also per stage of its 4-step alternating training):
#   train_cfg.max_iters = 80000 iterations in all, 1 image each;
#   param_scheduler[0].milestones = [60000]: lr 0.001 for 60k iterations, then 0.0001 for 20k;
#   optim_wrapper.optimizer: SGD lr 0.001, momentum 0.9, weight decay 0.0005.
_base_ = [
    '../_base_/models/faster-rcnn_vgg16.py',
    '../_base_/datasets/voc07.py',
    '../_base_/schedules/schedule_paper_80k.py',
    '../_base_/default_runtime.py',
]

# Counted in iterations, not epochs.
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=10000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
