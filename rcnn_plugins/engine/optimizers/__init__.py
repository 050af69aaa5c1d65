"""Optimizer wrappers: ``BF16OptimWrapper`` (bf16 autocast training on CPU), registered in
OPTIM_WRAPPERS."""
from .bf16_optim_wrapper import BF16OptimWrapper, cpu_bf16_supported  # noqa: F401
