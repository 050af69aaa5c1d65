"""Register a convolution layer so that mmcv's ``build_conv_layer`` finds it from any scope.

mmcv's ``build_conv_layer(dict(type=NAME), ...)`` looks ``NAME`` up in the registry of the
*current default scope* (``MODELS.switch_scope_and_registry(None)``): with
``default_scope='rcnn_plugins'`` that is our ``MODELS`` (which falls back to mmengine's root), with
no default scope it is mmengine's root ``MODELS``, where mmcv registers its own conv layers. So a
layer is registered in both: ours always, the root one only when the name is free there and
compiled ``mmcv.ops`` (``mmcv._ext``, which registers ``DCN``/``DCNv2`` itself) is not installed, so a full mmcv
keeps its own kernels.
"""
import importlib.util

from mmengine.registry import MODELS as MMENGINE_MODELS

from rcnn_plugins.registry import MODELS


def _mmcv_ops_available() -> bool:
    """True when mmcv's compiled extension is installed (mmcv-lite ships ``mmcv/ops`` without it)."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def register_conv_layer(name: str):
    """Class decorator: ``MODELS.register_module(name)`` in our scope and, if free, in mmengine's root."""

    def wrap(cls):
        MODELS.register_module(name=name, module=cls)
        if name not in MMENGINE_MODELS.module_dict and not _mmcv_ops_available():
            MMENGINE_MODELS.register_module(name=name, module=cls)
        return cls

    return wrap
