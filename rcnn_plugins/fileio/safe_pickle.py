"""Read plain pickles (not torch checkpoints) without running code from them.

``pickle.load`` calls whatever function the file names, so a downloaded proposal file or results
file could run a command. :func:`restricted_load` resolves only the globals of an allow-list and
raises :class:`RefusedGlobal` for any other, before it is called. Two allow-lists:

- :data:`NUMPY_GLOBALS`: numpy arrays, dtypes and scalars (numpy 1.x and 2.x module paths, pickle
  protocols 2 to 5); proposal files hold only these.
- :data:`TENSOR_GLOBALS`: torch tensors as ``pickle.dump`` writes them (their storage bytes are
  read with ``torch.load(weights_only=True)``), torch dtypes, ``torch.Size`` and ``OrderedDict``;
  saved test predictions (``tools/test.py --out``) hold these next to numpy values.

Torch checkpoints go through :mod:`rcnn_plugins.fileio.safe_load` instead (``weights_only=True``).
"""
import codecs
import collections
import io
import pickle
from typing import IO, Any, Dict, Tuple

import numpy as np
import torch

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

Globals = Dict[Tuple[str, str], Any]

NUMPY_GLOBALS: Globals = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    # Pickle protocol 2 (mmengine's dump) writes bytes as _codecs.encode(str, 'latin1').
    ('_codecs', 'encode'): codecs.encode,
}
# Files name the module of the numpy that wrote them: numpy.core (1.x) or numpy._core (2.x).
for _core in ('numpy.core', 'numpy._core'):
    NUMPY_GLOBALS[(f'{_core}.multiarray', '_reconstruct')] = _multiarray._reconstruct
    NUMPY_GLOBALS[(f'{_core}.multiarray', 'scalar')] = _multiarray.scalar
    NUMPY_GLOBALS[(f'{_core}.numeric', '_frombuffer')] = _numeric._frombuffer   # protocol 5 arrays
for _name in ('Float16DType', 'Float32DType', 'Float64DType', 'Int32DType', 'Int64DType', 'UInt8DType', 'BoolDType'):
    if hasattr(np, 'dtypes') and hasattr(np.dtypes, _name):
        NUMPY_GLOBALS[('numpy.dtypes', _name)] = getattr(np.dtypes, _name)


class _LoadStorageFromBytes:
    """``torch.storage._load_from_bytes`` with ``weights_only=True``: the bytes come from the file.

    An instance with no ``__dict__`` and no slots rather than a function: a pickle's BUILD opcode
    could otherwise set attributes on the allowed function for the rest of the process.
    """
    __slots__ = ()

    def __call__(self, data: bytes):
        return torch.load(io.BytesIO(data), weights_only=True)


_load_storage_from_bytes = _LoadStorageFromBytes()


TENSOR_GLOBALS: Globals = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
    ('torch.storage', '_load_from_bytes'): _load_storage_from_bytes,
    ('torch', 'Size'): torch.Size,
}
for _dtype in ('float16', 'bfloat16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool'):
    TENSOR_GLOBALS[('torch', _dtype)] = getattr(torch, _dtype)


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (``module``, ``name``)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f'{module}.{name} is not allowed')
        self.module = module
        self.name = name


class _RestrictedUnpickler(pickle.Unpickler):

    def __init__(self, file: IO[bytes], allowed: Globals) -> None:
        super().__init__(file)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None


def restricted_load(file: IO[bytes], allowed: Globals) -> Any:
    """``pickle.load(file)`` resolving only the ``allowed`` globals; others raise :class:`RefusedGlobal`."""
    return _RestrictedUnpickler(file, allowed).load()
