"""The FastAPI application: routes, error responses, readiness and draining.

``create_app(model, ...)`` returns the app; :mod:`rcnn_plugins.cli.serve` runs it under uvicorn. The model is
warmed up in a background thread at startup (``/ready`` answers 503 until it is done), the
batcher's worker thread is stopped at shutdown after in-flight requests are answered.
``app.state.draining`` (set on SIGTERM by the command line) turns new ``/predict`` requests
away with 503 while the ones already running complete.
"""
import asyncio
import sys
import threading
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .batcher import DynamicBatcher, QueueFull, ShuttingDown
from .errors import RequestError
from .limits import ServeLimits
from .metrics import Metrics
from .model import ServedModel
from .uploads import image_bytes

RETRY_AFTER = {'Retry-After': '1'}


def _page() -> str:
    return resources.files(__package__).joinpath('static', 'index.html').read_text(encoding='utf-8')


def create_app(model: ServedModel, limits: Optional[ServeLimits] = None, max_batch: int = 8,
               max_wait_ms: float = 10.0, score_thr: float = 0.3, warm_up: bool = True) -> FastAPI:
    """The server for ``model`` (see module docstring and docs/SERVING.md for the API)."""
    limits = limits or model.limits
    page = _page()
    score_thr_default = score_thr  # /predict's score_thr query parameter shadows the name

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        metrics = Metrics()
        batcher = DynamicBatcher(model.forward, max_batch=max_batch, max_wait_s=max_wait_ms / 1000,
                                 max_queue=limits.max_queue, on_batch=metrics.batch)
        metrics.queue_length = lambda: len(batcher)
        app.state.metrics, app.state.batcher = metrics, batcher
        app.state.ready = threading.Event()
        app.state.draining = False

        def warm() -> None:
            if warm_up:
                model.warm_up()
            app.state.ready.set()

        threading.Thread(target=warm, name='rcnn-serve-warm-up', daemon=True).start()
        yield
        # uvicorn gets here after the in-flight requests were answered; queued jobs still finish.
        await run_in_threadpool(batcher.close, 30.0)
        print('rcnn-serve: stopped (in-flight requests answered)', file=sys.stderr, flush=True)

    app = FastAPI(title='rcnn_plugins detector', lifespan=lifespan, docs_url='/docs', redoc_url=None)

    def answer(endpoint: str, response: Response, start: Optional[float] = None) -> Response:
        app.state.metrics.request(endpoint, response.status_code,
                                  None if start is None else time.perf_counter() - start)
        return response

    def error(endpoint: str, err: RequestError, start: Optional[float] = None) -> JSONResponse:
        app.state.metrics.request(endpoint, err.status, None if start is None else time.perf_counter() - start,
                                  error=err.kind)
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.get('/', response_class=HTMLResponse)
    async def index() -> Response:
        return answer('/', HTMLResponse(page))

    @app.get('/health')
    async def health() -> Response:
        return answer('/health', JSONResponse(dict(status='ok')))

    @app.get('/ready')
    async def ready() -> Response:
        if app.state.draining:
            return answer('/ready', JSONResponse(dict(status='shutting down'), 503, headers=RETRY_AFTER))
        if not app.state.ready.is_set():
            return answer('/ready', JSONResponse(dict(status='warming up'), 503, headers=RETRY_AFTER))
        return answer('/ready', JSONResponse(dict(status='ready', model=model.name)))

    @app.get('/info')
    async def info() -> Response:
        return answer('/info', JSONResponse(dict(
            model=model.name, backend=model.backend, classes=list(model.classes), score_thr=score_thr,
            max_batch=max_batch, max_wait_ms=max_wait_ms, max_upload_bytes=limits.max_upload_bytes,
            max_pixels=limits.max_pixels, request_timeout_s=limits.request_timeout_s, max_queue=limits.max_queue)))

    @app.get('/metrics')
    async def metrics() -> Response:
        return answer('/metrics', PlainTextResponse(app.state.metrics.render(),
                                                    media_type='text/plain; version=0.0.4'))

    async def handle(request: Request, draw: bool, thr: float, start: float) -> Response:
        data = await image_bytes(request, limits)
        img = await run_in_threadpool(model.decode, data)
        packed = await run_in_threadpool(model.pack, img)
        try:
            job = app.state.batcher.submit(packed, model.shape_key(packed))
        except QueueFull:
            raise RequestError(503, 'queue_full', f'{limits.max_queue} images are already waiting (--max-queue); '
                                                  'retry later', RETRY_AFTER)
        except ShuttingDown:
            raise RequestError(503, 'shutting_down', 'the server is shutting down; retry on another replica',
                               RETRY_AFTER)
        sample = await asyncio.wrap_future(job.future)
        if draw:
            jpeg = await run_in_threadpool(model.draw, img, sample, thr)
            return Response(jpeg, media_type='image/jpeg')
        h, w = img.shape[:2]
        out = model.to_dict(sample, thr)
        out.update(image=dict(width=w, height=h), model=model.name, score_thr=thr,
                   timing=dict(queue_ms=round(job.queue_s * 1e3, 3), inference_ms=round(job.run_s * 1e3, 3),
                               batch_size=job.batch_size, total_ms=round((time.perf_counter() - start) * 1e3, 3)))
        return JSONResponse(out)

    @app.post('/predict')
    async def predict(request: Request, draw: int = 0, score_thr: Optional[float] = None) -> Response:
        start = time.perf_counter()
        thr = score_thr if score_thr is not None else score_thr_default
        try:
            if app.state.draining:
                raise RequestError(503, 'shutting_down', 'the server is shutting down; retry on another replica',
                                   RETRY_AFTER)
            if not app.state.ready.is_set():
                raise RequestError(503, 'not_ready', 'the model is still warming up; retry shortly', RETRY_AFTER)
            response = await asyncio.wait_for(handle(request, bool(draw), thr, start), limits.request_timeout_s)
        except RequestError as err:
            return error('/predict', err, start)
        except asyncio.TimeoutError:
            return error('/predict', RequestError(504, 'timeout', f'no answer within {limits.request_timeout_s:g} s '
                                                                  '(--timeout); the server is overloaded'), start)
        except ClientDisconnect:
            app.state.metrics.request('/predict', 499, error='client_disconnected')
            return Response(status_code=400)  # nobody reads it
        except Exception as err:  # the model failed: the server keeps answering
            return error('/predict', RequestError(500, 'inference_error', f'{type(err).__name__}: {err}'), start)
        return answer('/predict', response, start)

    return app
