"""Training loops that resume bit-exactly (registered in ``LOOPS`` under mmengine's names, so
``train_cfg=dict(type='EpochBasedTrainLoop')`` with ``default_scope='rcnn_plugins'`` gets them)."""
from .epoch_based_train_loop import EpochBasedTrainLoop
from .iter_based_train_loop import IterBasedTrainLoop

__all__ = ['EpochBasedTrainLoop', 'IterBasedTrainLoop']
