# Runtime settings shared by every config: hooks, environment, logging, visualisation.
# default_scope makes every `type=` below resolve in rcnn_plugins' registries first (falling back
# to mmengine's), and makes mmengine import rcnn_plugins on its own.
default_scope = 'rcnn_plugins'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # rcnn_plugins' CheckpointHook: same arguments as mmengine's, but saves atomically.
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Checkpoints carry the torch / numpy / random / CUDA RNG states; --resume puts them back.
    # With the train loops of rcnn_plugins (train_cfg type EpochBasedTrainLoop or
    # IterBasedTrainLoop resolve to ours), a resumed run ends with the same weights as one
    # never interrupted, also from mid-epoch checkpoints (README "Resume").
    rng_state=dict(type='RNGStateHook'),
    visualization=dict(type='DetVisualizationHook'),
    # Stops on a NaN/Inf loss or exploding gradients before the step, naming the iteration, the
    # loss terms and the images; action='skip' / 'lower_lr' go on instead.
    divergence_guard=dict(type='DivergenceGuardHook', action='stop', max_grad_norm=1e4),
    # The heads' num_classes must equal the dataset's number of classes.
    num_class_check=dict(type='NumClassCheckHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # timeout (seconds) of every collective: a rank that died or hangs makes the others fail
    # with a timeout error after this long instead of waiting forever. Long enough for rank 0
    # to evaluate a large validation set while the others wait.
    dist_cfg=dict(backend='nccl', timeout=1800))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
