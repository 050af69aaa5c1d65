"""Exported backends for evaluation and inference: ``--backend pytorch|onnxruntime|openvino``.

``BackendPredictor(model, backend, checkpoint)`` exports the loaded detector's predict path
(``DetectorExportWrapper`` with the image size as a second input, so boxes are clipped to the
image inside the padded tensor exactly as ``predict`` clips them) to ONNX on first use, caches the
file next to the checkpoint, and offers ``test_step(data)`` with the detector's own contract: the
data preprocessor runs eagerly, then each image goes through the runtime at its own padded size,
and boxes are divided by ``scale_factor`` as ``predict(rescale=True)`` does.

Shape policy: one graph with dynamic height and width. Static graphs bucketed to a few sizes were
considered and rejected: an image padded to a larger bucket gets different features (padding
changes predictions), so its detections would differ from eager ones.

Cache: ``<checkpoint>.exports/<key>.onnx``, ``key`` = SHA-256 of the config text, the checkpoint's
bytes, the shape policy, the opset and the torch / exporter versions; a changed weight is a new
key, so a stale export is never used (old files stay until deleted). Without a checkpoint the
cache is ``~/.cache/rcnn_plugins/exports``.
"""
import hashlib
import os.path as osp
import warnings
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.structures import InstanceData

from ..fileio import atomic_path
from .export_wrapper import DetectorExportWrapper

BACKENDS = ('pytorch', 'onnxruntime', 'openvino')
# backend -> (modules it imports, extra that installs them)
_EXTRAS = {'onnxruntime': (('onnx', 'onnxruntime'), 'export'), 'openvino': (('onnx', 'openvino'), 'openvino')}
OPSET = 17
_EXPORT_VERSION = '1'  # bump when the exported graph changes meaning


class MissingExtraError(ImportError):
    """A backend's runtime is not installed; the message names the extra to install."""


def require_backend(backend: str) -> None:
    """Raise a clear error for an unknown backend or a missing runtime."""
    if backend not in BACKENDS:
        raise ValueError(f'backend {backend!r}: choose one of {", ".join(BACKENDS)}')
    if backend == 'pytorch':
        return
    modules, extra = _EXTRAS[backend]
    for name in modules:
        try:
            __import__(name)
        except ImportError as err:
            raise MissingExtraError(
                f"backend {backend!r} needs the '{extra}' extra ({name} is not installed: {err}); "
                f"install it with: pip install 'rcnn_plugins[{extra}]'") from None


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def cache_path(cfg, checkpoint: Optional[str], policy: str = 'dynamic', cache_dir: Optional[str] = None) -> str:
    """Where the export of (config, checkpoint, policy) lives (see the module docstring)."""
    digest = hashlib.sha256()
    for part in (cfg.pretty_text, _file_sha256(checkpoint) if checkpoint else 'random-init', policy,
                 str(OPSET), torch.__version__, _EXPORT_VERSION):
        digest.update(part.encode())
        digest.update(b'\0')
    if cache_dir is None:
        cache_dir = (checkpoint + '.exports' if checkpoint else
                     osp.join(osp.expanduser('~'), '.cache', 'rcnn_plugins', 'exports'))
    return osp.join(cache_dir, digest.hexdigest()[:20] + '.onnx')


def export_for_backend(model: torch.nn.Module, out: str, example_hw: Tuple[int, int] = (320, 320)) -> str:
    """Write ``model``'s predict path with dynamic (H, W) and an ``img_hw`` input to ``out``
    atomically (:func:`rcnn_plugins.fileio.atomic_path`)."""
    wrapper = DetectorExportWrapper(model)
    x = torch.randn(1, 3, *example_hw)
    hw = torch.tensor(example_hw, dtype=torch.float32)
    axes = {'image': {2: 'height', 3: 'width'}, 'boxes': {0: 'num_dets'}, 'scores': {0: 'num_dets'},
            'labels': {0: 'num_dets'}}
    with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        torch.onnx.export(wrapper, (x, hw), tmp, dynamo=False, opset_version=OPSET,
                          input_names=['image', 'img_hw'], output_names=['boxes', 'scores', 'labels'],
                          dynamic_axes=axes)
    return out


class BackendSession:
    """One exported graph on onnxruntime's or OpenVINO's CPU device, fp32.

    ``__call__(image (1, 3, H, W) float32, img_hw (2,) float32)`` -> numpy boxes (K, 4), scores
    (K,), labels (K,) in pixels of the tensor.
    """

    def __init__(self, path: str, backend: str, threads: Optional[int] = None) -> None:
        require_backend(backend)
        self.backend = backend
        threads = threads or torch.get_num_threads()
        if backend == 'onnxruntime':
            import onnxruntime as ort
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            self._session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        else:
            import openvino as ov
            # f32: OpenVINO would otherwise pick bf16 on CPUs that have it (results change by ~1e-2).
            self._compiled = ov.Core().compile_model(path, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32',
                                                                    'INFERENCE_NUM_THREADS': threads})
            self._request = self._compiled.create_infer_request()

    def __call__(self, image: np.ndarray, img_hw: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        feeds = {'image': np.ascontiguousarray(image, dtype=np.float32),
                 'img_hw': np.asarray(img_hw, dtype=np.float32)}
        if self.backend == 'onnxruntime':
            return tuple(self._session.run(['boxes', 'scores', 'labels'], feeds))
        out = self._request.infer(feeds)
        return tuple(out[self._compiled.output(name)] for name in ('boxes', 'scores', 'labels'))


class BackendPredictor:
    """``test_step`` of a detector, run through an exported backend (see the module docstring).

    Args:
        model: the loaded detector as built (not fused; eval mode).
        backend: ``'onnxruntime'`` or ``'openvino'``.
        checkpoint: the checkpoint the weights came from (keys the cache and places it).
        cache_dir: overrides the cache folder.
        threads: runtime threads (default torch's).
        onnx_path: run this file (written by :func:`export_for_backend` or quantized from one)
            instead of the cached export.
    """

    def __init__(self, model: torch.nn.Module, backend: str, checkpoint: Optional[str] = None,
                 cache_dir: Optional[str] = None, threads: Optional[int] = None,
                 onnx_path: Optional[str] = None) -> None:
        require_backend(backend)
        if backend == 'pytorch':
            raise ValueError("BackendPredictor is for exported backends; 'pytorch' runs the model itself")
        model = model.module if is_model_wrapper(model) else model
        self.model = model
        self.path = onnx_path or cache_path(model.cfg, checkpoint, cache_dir=cache_dir)
        if onnx_path is not None:
            if not osp.isfile(onnx_path):
                raise FileNotFoundError(f'{onnx_path}: no such ONNX file')
        elif osp.exists(self.path):
            print_log(f'backend {backend}: cached export {self.path}', logger='current')
        else:
            print_log(f'backend {backend}: exporting the model to {self.path} (first use of this config and '
                      'checkpoint)', logger='current')
            export_for_backend(model.eval(), self.path)
        self.session = BackendSession(self.path, backend, threads)

    @torch.no_grad()
    def test_step(self, data: dict) -> List:
        """As ``model.test_step``: a collated batch -> its data samples with ``pred_instances``
        (boxes in original-image pixels)."""
        data = self.model.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        divisor = getattr(self.model.data_preprocessor, 'pad_size_divisor', 1) or 1
        for x, sample in zip(inputs, samples):
            h, w = sample.img_shape[:2]
            # The image at its own padded size: what a batch of one would be.
            ph, pw = min(-(-h // divisor) * divisor, x.size(1)), min(-(-w // divisor) * divisor, x.size(2))
            image = x[None, :, :ph, :pw].float().contiguous().numpy()
            boxes, scores, labels = self.session(image, np.array([h, w], dtype=np.float32))
            boxes = torch.from_numpy(np.asarray(boxes, dtype=np.float32))
            if 'scale_factor' in sample:
                sw, sh = sample.scale_factor
                boxes = boxes / boxes.new_tensor([sw, sh, sw, sh])
            sample.pred_instances = InstanceData(bboxes=boxes, scores=torch.from_numpy(np.asarray(scores)),
                                                 labels=torch.from_numpy(np.asarray(labels)).long())
        return samples


class BackendTestHook(Hook):
    """``tools/test.py --backend``: after the checkpoint is loaded, route the model's ``test_step``
    through :class:`BackendPredictor` (an instance attribute shadows the method)."""
    priority = 'VERY_LOW'

    def __init__(self, backend: str, checkpoint: Optional[str], onnx_path: Optional[str] = None) -> None:
        self.backend = backend
        self.checkpoint = checkpoint
        self.onnx_path = onnx_path

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.cfg = runner.cfg
        model.test_step = BackendPredictor(model, self.backend, self.checkpoint, onnx_path=self.onnx_path).test_step
