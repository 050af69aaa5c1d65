"""Test-time augmentation configs: what ``tools/test.py --tta`` and ``tools/infer.py --tta`` run.

:func:`tta_config` does what MMDetection's ``tools/test.py --tta`` does to a config: without a
``tta_model``, ``DetTTAModel`` with class-wise NMS at IoU 0.5 keeping 100; without a
``tta_pipeline``, the test pipeline whose last step (``PackDetInputs``) becomes mmcv's
``TestTimeAug`` over a flipped and an unflipped view; then ``model`` is wrapped in the TTA model
and the test dataset runs the TTA pipeline.
"""
import copy
import warnings

from mmengine.config import Config, ConfigDict

DEFAULT_TTA_MODEL = dict(type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
TTA_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction')


def default_tta_pipeline(test_pipeline: list) -> list:
    """The test pipeline with its last step replaced by a flip / no-flip ``TestTimeAug``."""
    pipeline = copy.deepcopy(list(test_pipeline))
    pipeline[-1] = dict(type='TestTimeAug', transforms=[
        [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
        [dict(type='PackDetInputs', meta_keys=TTA_META_KEYS)]])
    return pipeline


def tta_config(cfg: Config) -> Config:
    """``cfg`` changed in place (and returned) to test with test-time augmentation."""
    if 'tta_model' not in cfg:
        warnings.warn('no tta_model in the config: using DetTTAModel with nms iou_threshold=0.5, max_per_img=100')
        cfg.tta_model = copy.deepcopy(DEFAULT_TTA_MODEL)
    if 'tta_pipeline' not in cfg:
        warnings.warn('no tta_pipeline in the config: using the test pipeline with a flipped and an unflipped view')
        dataset = cfg.test_dataloader.dataset
        while 'dataset' in dataset:  # wrappers (ConcatDataset, ...)
            dataset = dataset['dataset']
        cfg.tta_pipeline = default_tta_pipeline(dataset.pipeline)
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    return cfg
