"""The served detector: image bytes -> BGR image -> pipeline output -> prediction dict, around
:class:`rcnn_plugins.apis.DetInferencer`, so a served image gets exactly what the inferencer
(and ``tools/infer.py``) gives for the same file: the config's loader decodes the bytes, the
test pipeline resizes, ``DetInferencer``'s forward runs the model, boxes come back in
original-image pixels.
"""
import inspect
import os.path as osp
import threading
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ...datasets.transforms.loading import _why_undecodable
from ..batching import padded_shape
from ..det_inferencer import DetInferencer
from ..results import pred_to_dict
from .errors import RequestError
from .limits import ServeLimits, check_complete


class ServedModel:
    """One detector in one process.

    Args:
        config, checkpoint, device, classes: as ``DetInferencer``'s ``model``, ``weights``,
            ``device``, ``classes``.
        backend: ``'pytorch'``; another backend is passed to ``DetInferencer(backend=...)`` where
            it takes one.
        limits: the pixel limit applied before decoding.
    """

    def __init__(self, config: str, checkpoint: Optional[str], device: Optional[str] = None,
                 backend: str = 'pytorch', classes: Optional[Sequence[str]] = None,
                 limits: Optional[ServeLimits] = None) -> None:
        kwargs = {}
        if 'backend' in inspect.signature(DetInferencer.__init__).parameters:
            kwargs['backend'] = backend
        elif backend != 'pytorch':
            raise ValueError(f'--backend {backend}: this DetInferencer runs PyTorch models only; use --backend pytorch')
        self.inferencer = DetInferencer(config, checkpoint, device=device, show_progress=False, classes=classes,
                                        **kwargs)
        self.name = osp.splitext(osp.basename(config))[0] if isinstance(config, str) else 'model'
        self.backend = backend
        self.classes: Tuple[str, ...] = tuple(self.inferencer.classes)
        self.limits = limits or ServeLimits()
        self._draw_lock = threading.Lock()  # the visualizer draws into one shared canvas

    # ------------------------------------------------------------------ per request (any thread)
    def decode(self, data: bytes) -> np.ndarray:
        """Bytes -> (H, W, 3) uint8 BGR, as the config's ``LoadImageFromFile`` decodes a file."""
        self.limits.check_pixels(data)
        check_complete(data)
        # The config's own loader decodes (EXIF, gray, alpha, 16-bit rules), so a served image is
        # exactly what DetInferencer reads from the same file.
        loader = self.inferencer._load_file
        try:
            img = loader._decode(data)
        except ValueError as err:  # e.g. float TIFF
            raise RequestError(400, 'bad_image', f'the image cannot be used: {err}')
        if img is None or img.size == 0:
            raise RequestError(400, 'bad_image', f'the upload is not a readable image: {_why_undecodable(data)}')
        if img.shape[0] * img.shape[1] > self.limits.max_pixels:  # formats whose header is not read
            raise RequestError(413, 'too_many_pixels', f'the image is {img.shape[1]}x{img.shape[0]} pixels, more '
                                                       f'than this server accepts ({self.limits.max_pixels})')
        return img

    def pack(self, img: np.ndarray) -> dict:
        """The test pipeline's output for ``img``."""
        return self.inferencer._pack(img)

    def shape_key(self, packed: dict) -> Tuple[int, int]:
        """Images of one padded shape may share a forward pass without changing any result."""
        return padded_shape(packed, self.inferencer._pad_divisor)

    def to_dict(self, sample, score_thr: float) -> dict:
        """Detections scoring at least ``score_thr``, boxes x1, y1, x2, y2 in original-image pixels."""
        pred = sample.pred_instances
        pred = pred[pred.scores >= score_thr]
        out = pred_to_dict(pred, self.classes)
        return out

    def draw(self, img: np.ndarray, sample, score_thr: float) -> bytes:
        """The image with the detections scoring above ``score_thr`` drawn, JPEG-encoded."""
        with self._draw_lock:
            rgb = self.inferencer._draw('request', img, sample, True, False, 0, score_thr)
        ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RequestError(500, 'draw_failed', 'the drawing could not be encoded')
        return buf.tobytes()

    # ------------------------------------------------------------------ batch (the batcher's thread)
    def forward(self, packed: List[dict]) -> list:
        """One forward pass over pipeline outputs of one padded shape -> ``DetDataSample`` each."""
        return self.inferencer._forward(packed)

    def warm_up(self, sizes: Sequence[Tuple[int, int]] = ((480, 640),)) -> None:
        """Run the model once per size so the first request does not pay for lazy initialisation."""
        for h, w in sizes:
            self.forward([self.pack(np.zeros((h, w, 3), np.uint8))])
