"""Read a predictions file written by ``tools/test.py --out results.pkl`` without running its code.

The file is a pickle (mmengine's ``DumpResults``: a list with one dict per test image holding
``pred_instances`` tensors, ``img_id``, ``img_path``, ``ori_shape``, ...). It is read with
:func:`rcnn_plugins.fileio.safe_pickle.restricted_load`, which resolves only containers, numpy arrays and
torch tensors; a file naming anything else is refused with a message naming the global.
"""
import pickle
from typing import List

from ..fileio.safe_pickle import NUMPY_GLOBALS, TENSOR_GLOBALS, RefusedGlobal, restricted_load


class UnsafePickleError(pickle.UnpicklingError):
    """The results file asks for a global that a predictions file never needs."""


def load_results(path: str) -> List[dict]:
    """The list of per-image prediction dicts saved by ``tools/test.py --out`` (see module doc)."""
    try:
        with open(path, 'rb') as f:
            results = restricted_load(f, {**NUMPY_GLOBALS, **TENSOR_GLOBALS})
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: no such predictions file; write one with '
                                f'tools/test.py CONFIG CHECKPOINT --out {path}') from None
    except RefusedGlobal as e:
        raise UnsafePickleError(
            f'{path}: refusing to load: the pickle asks for {e.module}.{e.name}, which a predictions '
            f'file (tools/test.py --out) never holds. It may run code; if you trust the file and know '
            f'why it holds that, load it with pickle yourself.') from None
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise ValueError(f'{path}: not a readable predictions pickle ({e}); write one with '
                         f'tools/test.py CONFIG CHECKPOINT --out results.pkl') from None
    if not isinstance(results, list) or not all(isinstance(r, dict) and 'pred_instances' in r for r in results):
        raise ValueError(f'{path}: expected a list of per-image dicts with pred_instances '
                         f'(tools/test.py --out), got {type(results).__name__}')
    return results
