"""CPU latency of one image through the exported ONNX graph (onnxruntime) and the same predict
path in eager PyTorch, on the same preprocessed tensor and thread count."""
import os
import statistics
import tempfile
import time
from typing import Optional, Sequence

import torch

from .export import ONNXDetector, export_onnx
from .export_wrapper import DetectorExportWrapper


def _median_seconds(fn, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_latency(model, shape: Sequence[int] = (800, 1216), runs: int = 3, warmup: int = 1, threads: int = 2,
                    onnx_path: Optional[str] = None, seed: int = 0) -> dict:
    """Median seconds per image of onnxruntime and of eager ``model.predict`` (no grad).

    Both run the predict path (backbone to final NMS) on one random (1, 3, H, W) tensor with
    ``threads`` intra-op threads and denormal floats flushed to zero in both (random weights make
    denormals, slow on CPUs); the ONNX file is exported to ``onnx_path`` (a temporary file by
    default). Returns dict(onnxruntime_s, eager_s, shape, threads, runs, detections).
    """
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))
    with tempfile.TemporaryDirectory() as tmp:
        path = onnx_path or os.path.join(tmp, 'model.onnx')
        export_onnx(model, path, shape)
        detector = ONNXDetector(path, threads=threads, denormal_as_zero=True)
        ort_s = _median_seconds(lambda: detector.run_tensor(x), runs, warmup)
        wrapper = DetectorExportWrapper(model)
        from ..structures import DetDataSample
        sample = dict(img_shape=tuple(shape), scale_factor=(1., 1.))

        def eager():
            with torch.no_grad():
                return model.predict(x, [DetDataSample(metainfo=sample)])

        eager_s = _median_seconds(eager, runs, warmup)
        with torch.no_grad():
            num = int(wrapper(x)[1].numel())
    return dict(onnxruntime_s=ort_s, eager_s=eager_s, shape=list(shape), threads=threads, runs=runs, detections=num)
