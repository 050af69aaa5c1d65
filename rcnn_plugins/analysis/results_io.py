"""Read a predictions file written by ``tools/test.py --out results.pkl`` without running its code.

The file is a pickle (mmengine's ``DumpResults``: a list with one dict per test image holding
``pred_instances`` tensors, ``img_id``, ``img_path``, ``ori_shape``, ...). ``pickle.load`` would run
whatever a crafted file asks for, so this unpickler resolves only the globals such a file needs:
containers, numpy arrays and torch tensors, whose storage bytes are read with
``torch.load(weights_only=True)``. Anything else is refused with a message naming the global.
"""
import codecs
import collections
import io
import pickle
from typing import List

import numpy as np
import torch

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _load_storage_from_bytes(data: bytes):
    """``torch.storage._load_from_bytes`` with ``weights_only=True``: the bytes come from the file."""
    return torch.load(io.BytesIO(data), weights_only=True)


# (module, name) -> the object to use. numpy moved ``core`` to ``_core`` in 2.0; files from
# either version name their own.
_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    # Pickle protocol 2 (mmengine's dump) writes bytes as _codecs.encode(str, 'latin1').
    ('_codecs', 'encode'): codecs.encode,
    ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
    ('torch.storage', '_load_from_bytes'): _load_storage_from_bytes,
    ('torch', 'Size'): torch.Size,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}
for _core in ('numpy.core.multiarray', 'numpy._core.multiarray'):
    _ALLOWED[(_core, '_reconstruct')] = _multiarray._reconstruct
    _ALLOWED[(_core, 'scalar')] = _multiarray.scalar
for _numeric_name in ('numpy.core.numeric', 'numpy._core.numeric'):   # arrays in pickle protocol 5
    _ALLOWED[(_numeric_name, '_frombuffer')] = _numeric._frombuffer
for _dtype in ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool'):
    _ALLOWED[('torch', _dtype)] = getattr(torch, _dtype)
for _dtype_cls in ('Float64DType', 'Float32DType', 'Int64DType', 'Int32DType', 'BoolDType', 'UInt8DType'):
    if hasattr(np.dtypes, _dtype_cls):
        _ALLOWED[('numpy.dtypes', _dtype_cls)] = getattr(np.dtypes, _dtype_cls)


class UnsafePickleError(pickle.UnpicklingError):
    """The results file asks for a global that a predictions file never needs."""


class _ResultsUnpickler(pickle.Unpickler):

    def __init__(self, file, path: str):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str):
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f'{self.path}: refusing to load: the pickle asks for {module}.{name}, which a '
                f'predictions file (tools/test.py --out) never holds. It may run code; if you '
                f'trust the file and know why it holds that, load it with pickle yourself.')
        return obj


def load_results(path: str) -> List[dict]:
    """The list of per-image prediction dicts saved by ``tools/test.py --out`` (see module doc)."""
    try:
        with open(path, 'rb') as f:
            results = _ResultsUnpickler(f, path).load()
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: no such predictions file; write one with '
                                f'tools/test.py CONFIG CHECKPOINT --out {path}') from None
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise ValueError(f'{path}: not a readable predictions pickle ({e}); write one with '
                         f'tools/test.py CONFIG CHECKPOINT --out results.pkl') from None
    if not isinstance(results, list) or not all(isinstance(r, dict) and 'pred_instances' in r for r in results):
        raise ValueError(f'{path}: expected a list of per-image dicts with pred_instances '
                         f'(tools/test.py --out), got {type(results).__name__}')
    return results
