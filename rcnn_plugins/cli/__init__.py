"""The command-line layer: one module per command, each a ``*_parser()`` (argparse) and a
``*_main(argv=None)``; ``tools/*.py`` and the ``rcnn-*`` console scripts are one-line wrappers.

Shared by all: :mod:`.common` (flags, ``load_config`` with checked ``--cfg-options``,
``--unsafe-load``) and :mod:`.errors` (one ``error:`` line on stderr; exit 2 for bad input, 1 for a
failure). Commands: :mod:`.train`, :mod:`.test`, :mod:`.infer`, :mod:`.train_alternating`,
:mod:`.gen_proposals`, :mod:`.analysis_tools`, :mod:`.deployment`, :mod:`.quantize`, :mod:`.converters`,
:mod:`.serve`.
"""
from .infer import infer_main
from .test import test_config, test_main, test_parser
from .train import train_config, train_main, train_parser

__all__ = ['infer_main', 'test_config', 'test_main', 'test_parser', 'train_config', 'train_main', 'train_parser']
