# The Faster R-CNN paper's PASCAL VOC schedule (section 4.1): SGD, momentum 0.9, weight decay
# 0.0005, learning rate 0.001 for 60k minibatches then 0.0001 for 20k, one image per minibatch.
# Iteration-based: train_cfg.max_iters is the total (80k), param_scheduler's milestones the step.
max_iters = 80000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[60000], gamma=0.1),
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005),
    # py-faster-rcnn's Caffe solver: biases learn at twice the rate and without weight decay.
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0))

# lr 0.001 is for 1 image per iteration; `tools/train.py --auto-scale-lr` scales it to other batches.
auto_scale_lr = dict(enable=False, base_batch_size=1)

