"""int8 post-training static quantization of an exported detector with onnxruntime's own tooling.

``quantize_detector`` takes the fp32 export of ``backends.py`` (dynamic H, W, inputs ``image`` and
``img_hw``), calibrates activation ranges on images drawn from the user's training set (the
config's test pipeline, so they look like what the model sees at test time) and writes a QDQ
model in which the convolutions and linear layers run in int8 (weights per channel, symmetric
int8; activations uint8). NMS, RoIAlign, top-k and the box arithmetic stay fp32: their inputs
are coordinates and scores, whose rounding would move boxes.

The QDQ file runs on onnxruntime and on OpenVINO (which reads the QuantizeLinear/DequantizeLinear
pairs as its own int8 layers). The command (``tools/deployment/quantize.py``) is
:mod:`rcnn_plugins.cli.quantize`: it builds the model and calls these functions.
"""
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch

QUANTIZED_OPS = ['Conv', 'MatMul', 'Gemm']


def calibration_inputs(model: torch.nn.Module, cfg, num_images: int, seed: int = 0) -> List[Tuple[np.ndarray,
                                                                                                  np.ndarray]]:
    """``num_images`` (image (1, 3, H, W) float32, img_hw (2,)) pairs from the config's training
    set through its test pipeline and the model's data preprocessor, chosen at random (``seed``)."""
    import copy

    from mmengine.dataset import pseudo_collate

    from ..registry import DATASETS
    loader = cfg.get('train_dataloader') or cfg.get('test_dataloader')
    if loader is None:
        raise ValueError('quantize: the config has no train_dataloader (or test_dataloader) to draw '
                         'calibration images from')
    test_loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    dataset_cfg = copy.deepcopy(loader['dataset'])
    while 'pipeline' not in dataset_cfg and 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    test_ds = copy.deepcopy(test_loader['dataset'])
    while 'pipeline' not in test_ds and 'dataset' in test_ds:
        test_ds = test_ds['dataset']
    dataset_cfg['pipeline'] = test_ds['pipeline']
    dataset_cfg.pop('filter_cfg', None)
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise ValueError('quantize: the calibration dataset is empty')
    order = np.random.RandomState(seed).permutation(len(dataset))[:num_images]
    divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1) or 1
    out = []
    with torch.no_grad():
        for i in order:
            data = model.data_preprocessor(pseudo_collate([dataset[int(i)]]), False)
            h, w = data['data_samples'][0].img_shape[:2]
            x = data['inputs'][:, :, :-(-h // divisor) * divisor, :-(-w // divisor) * divisor]
            out.append((x.float().contiguous().numpy(), np.array([h, w], dtype=np.float32)))
    return out


def quantize_onnx(fp32_path: str, out_path: str, inputs: List[Tuple[np.ndarray, np.ndarray]]) -> str:
    """Static int8 quantization (QDQ) of ``fp32_path`` calibrated on ``inputs``; writes ``out_path``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator = iter(inputs)

        def get_next(self) -> Optional[dict]:
            item = next(self._it, None)
            return None if item is None else {'image': item[0], 'img_hw': item[1]}

        def rewind(self) -> None:
            self._it = iter(inputs)

    # onnxruntime's recommended pre-pass (graph optimisation, shape inference) into a temporary file:
    # it folds the constant chains in front of weights and biases so that they become initializers.
    import os
    import tempfile

    from onnxruntime.quantization.shape_inference import quant_pre_process
    fd, prepared = tempfile.mkstemp(suffix='.onnx', dir=os.path.dirname(os.path.abspath(out_path)))
    os.close(fd)
    try:
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        _quantize(prepared, out_path, Reader())
    finally:
        os.remove(prepared)
    return out_path


def _quantize(src: str, out_path: str, reader) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    quantize_static(src, out_path, reader, quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=QUANTIZED_OPS, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)


def evaluate(cfg, checkpoint: str, backend: str, onnx_path: str, work_dir: str) -> dict:
    """COCO / VOC metrics of the config's test set through ``onnx_path`` on ``backend``."""
    import copy

    from mmengine.runner import Runner

    from .backends import BackendTestHook
    cfg = copy.deepcopy(cfg)
    cfg.load_from, cfg.work_dir = checkpoint, work_dir
    if 'visualization' in cfg.get('default_hooks', {}):
        cfg.default_hooks.visualization.draw = False
    runner = Runner.from_cfg(cfg)
    runner.register_hook(BackendTestHook(backend, checkpoint, onnx_path))
    return runner.test()


def median_latency(paths: List[str], backend: str, inputs, rounds: int = 3) -> List[float]:
    """Median seconds per image of each file in ``paths``, run interleaved on the same inputs."""
    import time

    from .backends import BackendSession
    sessions = [BackendSession(p, backend) for p in paths]
    times: List[List[float]] = [[] for _ in paths]
    for s in sessions:
        s(*inputs[0])  # warm-up
    for _ in range(rounds):
        for image, hw in inputs:
            for k, s in enumerate(sessions):
                t = time.perf_counter()
                s(image, hw)
                times[k].append(time.perf_counter() - t)
    return [float(np.median(t)) for t in times]
