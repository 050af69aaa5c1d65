"""Serve a detector over HTTP: ``python tools/serve.py CONFIG [CHECKPOINT] [--port 8000] ...``.

A thin wrapper over :func:`rcnn_plugins.cli.serve.serve_main` (the ``rcnn-serve`` command);
``python tools/serve.py -h`` lists every flag, docs/SERVING.md explains the API.
"""
from rcnn_plugins.cli.serve import serve_main

if __name__ == '__main__':
    serve_main()
