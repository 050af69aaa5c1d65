"""Batching for inference: only images of one padded shape share a forward pass.

``DetDataPreprocessor`` pads every image of a batch at the bottom/right to the batch's largest
size, with zeros after normalisation. After the first convolution's bias / BN shift the padded
area's features are no longer zero, while an image run alone has zero padding around every
feature map; the convolutions near its bottom/right border see different neighbours and its
detections change (docs/INFERENCE.md, "Batching", has measurements). Images whose shapes after
the pipeline's resize round up to the same ``pad_size_divisor`` multiple need no extra padding,
so grouping by that shape gives batched detections equal to one-at-a-time ones (up to float
summation order, ~1e-5 px), while a folder of same-size photos or a video still runs at full
batch size.

:func:`batch_by_shape` does this over a stream, returning results in input order; images wait
for a full batch of their shape at most until ``max_waiting`` later images have arrived.
"""
import math
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Dict, Iterable, Iterator, List, Sequence, Tuple


def padded_shape(packed: dict, divisor: int) -> Tuple[int, int]:
    """(H, W) the data preprocessor pads a pipeline output's ``inputs`` (C, H, W) to when alone."""
    h, w = packed['inputs'].shape[-2:]
    return math.ceil(h / divisor) * divisor, math.ceil(w / divisor) * divisor


def group_by_shape(packed: Sequence[dict], divisor: int) -> List[List[int]]:
    """Indices of ``packed`` grouped by padded shape, groups in order of first appearance."""
    groups: Dict[Tuple[int, int], List[int]] = OrderedDict()
    for i, p in enumerate(packed):
        groups.setdefault(padded_shape(p, divisor), []).append(i)
    return list(groups.values())


def batch_by_shape(stream: Iterable[Tuple[Any, dict]], run: Callable[[List[dict]], List[Any]], batch_size: int,
                   divisor: int, max_waiting: int) -> Iterator[Tuple[Any, Any]]:
    """Batch ``(payload, packed)`` pairs by padded shape; yield ``(payload, result)`` in input order.

    Args:
        stream: payloads (anything, passed through) with their pipeline outputs.
        run: the model on a list of pipeline outputs of one padded shape -> one result each.
        batch_size: most inputs per ``run`` call.
        divisor: the data preprocessor's ``pad_size_divisor``.
        max_waiting: when more inputs than this are waiting, the oldest one's (partial) batch runs.
    """
    waiting: Dict[int, list] = OrderedDict()  # seq -> [payload, packed, shape, result or None]
    buckets: Dict[Tuple[int, int], List[int]] = defaultdict(list)

    def run_bucket(shape: Tuple[int, int]) -> None:
        seqs = buckets.pop(shape)
        for seq, result in zip(seqs, run([waiting[seq][1] for seq in seqs])):
            waiting[seq][1] = None  # the input tensor is no longer needed
            waiting[seq][3] = result

    def ready() -> Iterator[Tuple[Any, Any]]:
        while waiting and next(iter(waiting.values()))[3] is not None:
            _, (payload, _, _, result) = waiting.popitem(last=False)
            yield payload, result

    for seq, (payload, packed) in enumerate(stream):
        shape = padded_shape(packed, divisor)
        waiting[seq] = [payload, packed, shape, None]
        buckets[shape].append(seq)
        if len(buckets[shape]) == batch_size:
            run_bucket(shape)
        while len(waiting) > max_waiting and next(iter(waiting.values()))[3] is None:
            run_bucket(next(iter(waiting.values()))[2])
        yield from ready()
    for shape in list(buckets):
        run_bucket(shape)
    yield from ready()
