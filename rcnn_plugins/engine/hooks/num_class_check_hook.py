"""``NumClassCheckHook``: the model's ``num_classes`` must match the dataset's class list.

A config that keeps COCO's ``num_classes=80`` for a 4-class dataset trains without any error:
the extra 76 outputs are never targets, and the mistake surfaces (if ever) as odd scores. This
hook (the name MMDetection 2.x used; on by default in ``configs/_base_/default_runtime.py``)
compares, before training, validation and testing, every head's ``num_classes`` with
``len(dataset.metainfo['classes'])`` and raises one ``DatasetError`` naming both and the fix.
Left out: RPN heads (one objectness class, whether the detector calls them ``rpn_head`` or, as
the ``RPN`` detector does, ``bbox_head``: every head of an ``RPN`` detector is one) and the
backbone / neck (mmcv's ``VGG`` has an ImageNet ``num_classes``, -1 when its classifier is not built).
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from rcnn_plugins.datasets.errors import DatasetError
from rcnn_plugins.models.dense_heads import RPNHead
from rcnn_plugins.models.detectors import RPN
from rcnn_plugins.registry import HOOKS


@HOOKS.register_module()
class NumClassCheckHook(Hook):
    """Raise ``DatasetError`` when a head's ``num_classes`` != the dataset's number of classes."""

    priority = 'VERY_HIGH'

    def _check(self, runner, split: str, dataloader) -> None:
        dataset = dataloader.dataset
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if classes is None:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, RPN):  # a proposal detector (any RPN head: plain, guided anchoring, cascade)
            return
        for name, module in model.named_modules():
            num_classes = getattr(module, 'num_classes', None)
            if (not isinstance(num_classes, int) or name == '' or isinstance(module, RPNHead)
                    or name.split('.')[0] in ('rpn_head', 'backbone', 'neck')):
                continue
            if num_classes != len(classes):
                source = getattr(dataset, 'ann_file', '') or type(dataset).__name__
                shown = ', '.join(map(str, classes[:5])) + (', ...' if len(classes) > 5 else '')
                raise DatasetError(
                    f'model.{name}.num_classes is {num_classes} but the {split} dataset ({source}) has '
                    f'{len(classes)} classes ({shown}): set model.{name}.num_classes={len(classes)}, or '
                    f'give the dataset metainfo=dict(classes=...) with {num_classes} names.')

    def before_train(self, runner) -> None:
        self._check(runner, 'train', runner.train_dataloader)

    def before_val(self, runner) -> None:
        self._check(runner, 'val', runner.val_dataloader)

    def before_test(self, runner) -> None:
        self._check(runner, 'test', runner.test_dataloader)
