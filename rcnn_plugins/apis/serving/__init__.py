"""HTTP serving of a detector: ``rcnn-serve CONFIG CHECKPOINT`` (docs/SERVING.md).

One job per module: :mod:`.errors` (the JSON error a request gets), :mod:`.limits` (what a
request may cost), :mod:`.uploads` (request body -> image bytes), :mod:`.model` (bytes -> image
-> pipeline output -> prediction dict, around ``DetInferencer``), :mod:`.batcher` (dynamic
batching by padded shape in one worker thread), :mod:`.metrics` (Prometheus text), :mod:`.app`
(the FastAPI routes). The command line (flags, socket, uvicorn) is :mod:`rcnn_plugins.cli.serve`.
FastAPI / uvicorn are the optional ``serve`` extra, imported only by :mod:`.app` and the command.
"""
