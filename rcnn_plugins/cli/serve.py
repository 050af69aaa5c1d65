"""``rcnn-serve`` (also ``python tools/serve.py``): serve a detector over HTTP (docs/SERVING.md).

The server itself (app, batcher, limits, model) is :mod:`rcnn_plugins.apis.serving`; this module is
the command line: flags, the optional-dependency check, the listening socket, uvicorn.

    rcnn-serve CONFIG [CHECKPOINT] [--host 127.0.0.1] [--port 8000] [--device cpu|cuda]
        [--backend pytorch] [--max-batch 8] [--max-wait-ms 10] [--score-thr 0.3]
        [--max-upload-mb 20] [--max-pixels 50000000] [--timeout 30] [--max-queue 64]

Start-up errors follow cli/errors.py: bad input (a missing file, a refused checkpoint, the serve
extra not installed, a bad flag) is one ``error:`` line and exit 2; an address that cannot be
bound is exit 1.
"""
import argparse
import os
import socket
import sys
from typing import Optional, Sequence

from .errors import CommandFailed, UsageError, command


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='rcnn-serve', description='Serve a detector over HTTP: POST /predict, '
                                     'GET / (web page), /health, /ready, /metrics (docs/SERVING.md)')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (.pth); without one the model keeps random weights (for trying it out)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)')
    parser.add_argument('--port', type=int, default=8000, help='port (default 8000; 0 picks a free one)')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: cuda if available)')
    parser.add_argument('--backend', default='pytorch', choices=['pytorch', 'onnxruntime', 'openvino'],
                        help='inference backend, as tools/infer.py (default pytorch)')
    parser.add_argument('--classes', nargs='+', default=None, help='class names, overriding the checkpoint\'s')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='default score threshold of /predict (a request\'s ?score_thr= overrides it)')
    batching = parser.add_argument_group('dynamic batching')
    batching.add_argument('--max-batch', type=int, default=8, help='most images per forward pass (1: no batching)')
    batching.add_argument('--max-wait-ms', type=float, default=10.0,
                          help='longest an image waits for others to share its forward pass (default 10)')
    limits = parser.add_argument_group('limits')
    limits.add_argument('--max-upload-mb', type=float, default=20.0, help='largest request body, MiB (413 above)')
    limits.add_argument('--max-pixels', type=int, default=50_000_000,
                        help='largest width x height an image may have, read from its header (413 above)')
    limits.add_argument('--timeout', type=float, default=30.0, help='seconds before a request gets 504')
    limits.add_argument('--max-queue', type=int, default=64,
                        help='images waiting for the model; more get 503 with Retry-After (default 64)')
    limits.add_argument('--graceful-timeout', type=float, default=30.0,
                        help='on SIGTERM, seconds to let in-flight requests finish (default 30)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument('--no-warm-up', action='store_true', help='ready at once, without a first forward pass')
    parser.add_argument('--log-level', default='warning', help='uvicorn log level (default warning)')
    return parser


@command
def serve_main(argv: Optional[Sequence[str]] = None) -> None:
    args = serve_parser().parse_args(argv)
    # OpenCV's own cap for formats whose header the server does not read; read at its first decode.
    os.environ.setdefault('OPENCV_IO_MAX_IMAGE_PIXELS', str(args.max_pixels))
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise UsageError(f'rcnn-serve: {err.name} is missing; install the serve extra: '
                         'pip install "rcnn_plugins[serve]"') from None
    import torch
    import uvicorn

    from rcnn_plugins.apis.serving.app import create_app
    from rcnn_plugins.apis.serving.limits import ServeLimits
    from rcnn_plugins.apis.serving.model import ServedModel

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.max_batch < 1 or args.max_queue < 1:
        raise UsageError('rcnn-serve: --max-batch and --max-queue must be >= 1')
    limits = ServeLimits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                         request_timeout_s=args.timeout, max_queue=args.max_queue)
    # A missing file, a bad config or a refused checkpoint: one `error:` line, exit 2 (cli/errors.py).
    model = ServedModel(args.config, args.checkpoint, device=args.device, backend=args.backend,
                        classes=args.classes, limits=limits)
    app = create_app(model, limits, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                     score_thr=args.score_thr, warm_up=not args.no_warm_up)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            app.state.draining = True  # /ready says 503, new /predict requests get 503
            super().handle_exit(sig, frame)

    family = socket.AF_INET6 if ':' in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as err:
        raise CommandFailed(f'rcnn-serve: cannot listen on {args.host}:{args.port}: {err}') from None
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=args.graceful_timeout,
                            access_log=False)
    print(f'rcnn-serve: {model.name} listening on http://{host}:{port} (model warming up; GET /ready)',
          file=sys.stderr, flush=True)
    Server(config).run(sockets=[sock])
