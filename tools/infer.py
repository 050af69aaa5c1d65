"""Detect objects in your own images, folders, globs, list files or videos.

    python tools/infer.py INPUTS CONFIG [CHECKPOINT] --out-dir OUT [--score-thr 0.3] [--device cpu|cuda]
        [--batch-size N] [--classes ...] [--recursive] [--coco-json FILE [--ann-file ANN]]
        [--slice H W --overlap 0.2 ...]

A thin wrapper over :func:`rcnn_plugins.infer_cli.infer_main` (the work is done by
:class:`rcnn_plugins.apis.DetInferencer`); ``python tools/infer.py -h`` lists every flag.
"""
from rcnn_plugins.infer_cli import infer_main

if __name__ == '__main__':
    infer_main()
