"""Helpers for code that runs eagerly and inside graph capture (ONNX tracing, ``torch.export``)."""
from typing import Tuple

import torch
from torch import Tensor


def in_graph_capture() -> bool:
    """True while ``torch.onnx.export``'s tracer or ``torch.export`` records the model: sizes are
    then symbolic, and a Python branch on a data-dependent size would be frozen into the graph."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def topk_at_most(scores: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The ``min(k, N)`` highest of ``scores`` (N,), descending, and their indices.

    Eagerly, when ``k >= N`` nothing is selected or reordered (scores and ``arange(N)`` come back
    as they are). In graph capture ``min(k, N)`` must stay a graph value rather than the traced
    N: ONNX tracing counts the elements in the graph, ``torch.export`` takes a symbolic min.
    """
    if torch.jit.is_tracing():
        # A tensor k is recorded as a graph input of TopK (torchvision does the same for ONNX).
        n = torch.ones_like(scores, dtype=torch.long).sum()
        return scores.topk(n.clamp(max=k))
    if torch.compiler.is_exporting():
        return scores.topk(torch.sym_min(k, scores.size(0)))
    if k < scores.size(0):
        return scores.topk(k)
    return scores, torch.arange(scores.size(0), device=scores.device)
