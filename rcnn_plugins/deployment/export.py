"""Export a detector's predict path (``DetectorExportWrapper``) to ONNX or ``torch.export``, and run
an exported ONNX file with onnxruntime.

ONNX goes through the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), for
which torchvision registers the symbolics of ``roi_align`` (ONNX ``RoiAlign``) and ``nms``
(``NonMaxSuppression``). The preprocessing spec (``preprocess_spec``) and the class names are stored
in the file (ONNX ``metadata_props`` / the ``.pt2``'s extra file ``rcnn_plugins.json``) so the file
can be run without the config.
"""
import json
import os
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..fileio import atomic_path
from .export_wrapper import DetectorExportWrapper
from .preprocess import postprocess, preprocess, preprocess_spec

METADATA_KEY = 'rcnn_plugins'
OUTPUT_NAMES = ('boxes', 'scores', 'labels')


def _metadata(model, shape) -> dict:
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    return dict(preprocess=preprocess_spec(model.cfg, shape), classes=None if classes is None else list(classes),
                outputs=dict(boxes='(K, 4) xyxy, pixels of the input tensor', scores='(K,)', labels='(K,) int64'))


def _example_input(shape: Optional[Sequence[int]]) -> torch.Tensor:
    if shape is None:
        raise ValueError('export needs --shape H W: the size of the example input (with --dynamic only the '
                         'size traced; other sizes work too)')
    return torch.randn(1, 3, int(shape[0]), int(shape[1]))


def export_onnx(model, out: str, shape: Sequence[int], dynamic: bool = False, opset: int = 17) -> str:
    """Write ``model``'s predict path for one (1, 3, H, W) preprocessed image to an ONNX file.

    Args:
        model: a detector from ``init_detector`` (``model.cfg`` gives the preprocessing).
        out: the ``.onnx`` path.
        shape: (H, W) of the input (multiples of 32); with ``dynamic`` only the traced example.
        dynamic: height and width are dynamic axes of the graph (``preprocess`` then pads to the
            config's divisor instead of to ``shape``).
        opset: ONNX opset (>= 16).
    """
    if opset < 16:
        raise ValueError(f'opset {opset}: torchvision\'s RoiAlign symbolic with aligned=True needs opset >= 16')
    meta = _metadata(model, None if dynamic else shape)
    wrapper = DetectorExportWrapper(model)
    x = _example_input(shape)
    axes = None
    if dynamic:
        axes = {'image': {2: 'height', 3: 'width'}, 'boxes': {0: 'num_dets'}, 'scores': {0: 'num_dets'},
                'labels': {0: 'num_dets'}}
    # Written under a temporary name and renamed when complete (fileio.atomic_path): a killed
    # export never leaves a truncated model under the final name.
    with atomic_path(out) as tmp:
        _export_onnx_file(wrapper, x, tmp, opset, axes, meta)
    return out


def _export_onnx_file(wrapper, x, out, opset, axes, meta) -> None:
    import onnx
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer flags every shape check of the components (constant for a given graph) and
        # torch announces that the TorchScript exporter is legacy; neither concerns this graph.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='.*legacy TorchScript-based ONNX export', category=DeprecationWarning)
        torch.onnx.export(wrapper, (x,), out, dynamo=False, opset_version=opset, input_names=['image'],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=axes)
    proto = onnx.load(out)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(proto, out)


def export_torch(model, out: str, shape: Sequence[int], dynamic: bool = False) -> str:
    """Write ``model``'s predict path as a ``torch.export`` program (``.pt2``).

    Args:
        model, out, shape: as :func:`export_onnx` (``shape`` is the example input's size).
        dynamic: height and width are dynamic dimensions (multiples of 32, 64 to 4096 pixels).

    Load it with ``torch.export.load(out).module()``; it takes and returns what
    ``DetectorExportWrapper`` does.
    """
    meta = _metadata(model, None if dynamic else shape)
    wrapper = DetectorExportWrapper(model)
    x = _example_input(shape)
    dynamic_shapes = None
    if dynamic:
        from torch.export import Dim
        # The FPN halves the input 5 times: sizes are multiples of 32 (preprocess pads to that).
        h32, w32 = Dim('height_div_32', min=2, max=128), Dim('width_div_32', min=2, max=128)
        dynamic_shapes = {'image': {2: 32 * h32, 3: 32 * w32}}
    with torch.no_grad():
        program = torch.export.export(wrapper, (x,), dynamic_shapes=dynamic_shapes)
    with atomic_path(out) as tmp:
        torch.export.save(program, tmp, extra_files={f'{METADATA_KEY}.json': json.dumps(meta)})
    return out


class ONNXDetector:
    """An exported ONNX detector on onnxruntime's CPU provider: image in, original-pixel detections out.

    Args:
        path: the ``.onnx`` file written by :func:`export_onnx`.
        config: a config (path or ``Config``) to take the preprocessing and class names from instead
            of the file's metadata (for ONNX files written elsewhere).
        threads: onnxruntime intra-op threads (None: its default).
        denormal_as_zero: flush denormal floats to zero (as ``torch.set_flush_denormal(True)``);
            random or barely trained weights produce denormals, which are slow on CPUs.
    """

    def __init__(self, path: str, config=None, threads: Optional[int] = None, denormal_as_zero: bool = False) -> None:
        import onnxruntime as ort
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path}: no such ONNX file')
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        if denormal_as_zero:
            options.add_session_config_entry('session.set_denormal_as_zero', '1')
        self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        stored = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if config is not None:
            from mmengine.config import Config
            cfg = config if isinstance(config, Config) else Config.fromfile(str(config))
            shape = self.session.get_inputs()[0].shape[2:]
            fixed = all(isinstance(s, int) for s in shape)
            self.meta = dict(preprocess=preprocess_spec(cfg, shape if fixed else None),
                             classes=json.loads(stored)['classes'] if stored else None)
        elif stored:
            self.meta = json.loads(stored)
        else:
            raise ValueError(f'{path} has no rcnn_plugins preprocessing metadata (not written by '
                             'tools/deployment/export.py); give the config it was exported from (--config)')
        self.classes = self.meta.get('classes')

    def run_tensor(self, tensor: Union[torch.Tensor, np.ndarray]):
        """The raw graph: (1, 3, H, W) float32 -> (boxes, scores, labels) numpy, pixels of the tensor."""
        x = tensor.numpy() if isinstance(tensor, torch.Tensor) else tensor
        return tuple(self.session.run(list(OUTPUT_NAMES), {'image': np.ascontiguousarray(x, dtype=np.float32)}))

    def __call__(self, image: Union[str, np.ndarray], score_thr: float = 0.) -> dict:
        """Detections of one image (path or BGR array) in its pixels: ``bboxes`` (K, 4), ``scores``,
        ``labels`` numpy arrays, plus ``classes`` (names) when known."""
        x, meta = preprocess(image, self.meta['preprocess'])
        result = postprocess(*self.run_tensor(x), meta, score_thr)
        if self.classes:
            result['classes'] = [self.classes[i] for i in result['labels']]
        return result


def draw_detections(image: Union[str, np.ndarray], result: dict, out_file: str, classes=None,
                    score_thr: float = 0.) -> None:
    """Write ``image`` with ``result``'s boxes, class names and scores drawn (``DetLocalVisualizer``)."""
    from mmengine.structures import InstanceData

    from ..structures import DetDataSample
    from ..visualization import DetLocalVisualizer
    from .preprocess import _load
    img = _load(image)[..., ::-1]  # BGR -> RGB
    sample = DetDataSample(pred_instances=InstanceData(bboxes=torch.from_numpy(result['bboxes']),
                                                       scores=torch.from_numpy(result['scores']),
                                                       labels=torch.from_numpy(result['labels'])))
    visualizer = DetLocalVisualizer.get_instance('rcnn_plugins_deployment')
    visualizer.dataset_meta = dict(classes=classes) if classes else {}
    visualizer.add_datasample('image', img, sample, draw_gt=False, out_file=out_file, pred_score_thr=score_thr)
