"""rcnn_plugins: Faster R-CNN as registered, swappable mmengine components.

Importing the package is cheap: components are imported lazily by the registries in
:mod:`rcnn_plugins.registry` the first time a config asks for one.
"""
__version__ = '0.1.0'
