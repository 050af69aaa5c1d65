"""``FastInferenceHook``: apply the inference fast path (fused BN, channels-last) before testing.

It runs at ``before_test``, i.e. after the Runner has loaded the checkpoint into the model (fusing
earlier would make the checkpoint's BN keys unexpected). ``tools/test.py --fuse-conv-bn`` /
``--channels-last`` add it to ``custom_hooks``; in a config::

    custom_hooks = [dict(type='FastInferenceHook', fuse_conv_bn=True, channels_last=True)]
"""
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper

from rcnn_plugins.registry import HOOKS
from ...models.fast_inference import prepare_for_inference


@HOOKS.register_module()
class FastInferenceHook(Hook):
    """See the module docstring; arguments as :func:`rcnn_plugins.models.fast_inference.prepare_for_inference`."""
    priority = 'VERY_HIGH'

    def __init__(self, fuse_conv_bn: bool = True, channels_last: bool = True, reason: str = '') -> None:
        self.fuse_conv_bn = fuse_conv_bn
        self.channels_last = channels_last
        self.reason = reason or f'FastInferenceHook(fuse_conv_bn={fuse_conv_bn}, channels_last={channels_last})'

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, BaseTTAModel):  # tools/test.py --tta: the detector inside the TTA wrapper
            model = model.module
        prepare_for_inference(model, fuse_conv_bn=self.fuse_conv_bn, channels_last=self.channels_last)
        runner.logger.info(f'inference path: {self.reason}')
