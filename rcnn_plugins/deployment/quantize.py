"""int8 post-training static quantization of an exported detector with onnxruntime's own tooling.

``quantize_detector`` takes the fp32 export of ``backends.py`` (dynamic H, W, inputs ``image`` and
``img_hw``), calibrates activation ranges on images drawn from the user's training set (the
config's test pipeline, so they look like what the model sees at test time) and writes a QDQ
model in which the convolutions and linear layers run in int8 (weights per channel, symmetric
int8; activations uint8). NMS, RoIAlign, top-k and the box arithmetic stay fp32: their inputs
are coordinates and scores, whose rounding would move boxes.

The QDQ file runs on onnxruntime and on OpenVINO (which reads the QuantizeLinear/DequantizeLinear
pairs as its own int8 layers).
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


def main(argv=None) -> int:
    """``tools/deployment/quantize.py CONFIG CKPT --calib-images N --backend onnxruntime|openvino``."""
    import argparse
    import os
    import os.path as osp
    import shutil
    import tempfile

    from mmengine.config import Config, DictAction

    from ..apis import init_detector
    from .backends import BackendPredictor, require_backend
    parser = argparse.ArgumentParser(description='int8 static quantization of an exported detector, with its '
                                                 'mAP before and after and the speed-up')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--calib-images', type=int, default=100, help='calibration images from the training set')
    parser.add_argument('--backend', choices=['onnxruntime', 'openvino'], default='onnxruntime',
                        help='runtime that evaluates and times the int8 model (the quantizer is onnxruntime\'s; '
                             'OpenVINO runs its QDQ file as int8)')
    parser.add_argument('--max-drop', type=float, default=1.0, help='refuse an mAP drop above this (points)')
    parser.add_argument('--force', action='store_true', help='write the int8 model whatever its mAP')
    parser.add_argument('--out', default=None, help='int8 .onnx path (default: next to the fp32 export)')
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    try:
        require_backend(args.backend)
        require_backend('onnxruntime')  # the quantizer
    except ImportError as err:
        raise SystemExit(f'error: {err}') from None
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = init_detector(cfg, args.checkpoint, exact=True)
    fp32 = BackendPredictor(model, 'onnxruntime', args.checkpoint).path
    inputs = calibration_inputs(model, cfg, args.calib_images)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='rcnn_quantize_')
    os.makedirs(work_dir, exist_ok=True)
    tmp = osp.join(work_dir, 'int8.onnx')
    quantize_onnx(fp32, tmp, inputs)
    before = evaluate(cfg, args.checkpoint, args.backend, fp32, osp.join(work_dir, 'fp32'))
    after = evaluate(cfg, args.checkpoint, args.backend, tmp, osp.join(work_dir, 'int8'))
    t32, t8 = median_latency([fp32, tmp], args.backend, inputs[:10])
    key = next((k for k in before if k.endswith('bbox_mAP')), next(iter(before)))
    drop = 100 * (before[key] - after[key])
    print(f'{"":<24}{"fp32":>10}{"int8":>10}')
    for k in before:
        if isinstance(before[k], float):
            print(f'{k:<24}{before[k]:>10.3f}{after[k]:>10.3f}')
    print(f'{"latency (ms/image)":<24}{1000 * t32:>10.1f}{1000 * t8:>10.1f}   speed-up x{t32 / t8:.2f} '
          f'({args.backend}, {torch.get_num_threads()} threads)')
    print(f'{key} drop: {drop:.2f} points (limit {args.max_drop})')
    if drop > args.max_drop and not args.force:
        print(f'refused: the int8 model loses {drop:.2f} points of {key} (> --max-drop {args.max_drop}); '
              'nothing written (--force writes it anyway)')
        return 1
    out = args.out or fp32[:-len('.onnx')] + '.int8.onnx'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    shutil.move(tmp, out)
    print(f'int8 model: {out}  (run it: DetInferencer(CONFIG, CKPT, backend={args.backend!r}, onnx_path=FILE))')
    return 0
