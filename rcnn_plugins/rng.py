"""The process's random number generators, as one thing: capture, restore, fork, seed.

Training draws from four global generators: torch's CPU generator (the RPN / RoI samplers'
``randperm``), the CUDA generators, numpy's legacy global ``RandomState`` (mmcv's transforms,
e.g. ``RandomFlip``) and Python's ``random``. Bit-exact resume needs all four saved in the
checkpoint and put back (:class:`~rcnn_plugins.engine.hooks.RNGStateHook`), and everything that
is not training (validation, starting a data-loader iterator, loading one image) must leave
them as it found them (:func:`preserved_rng`, :func:`seeded_rng`).

:func:`capture_rng_state` returns only tensors, ints and lists, so that a checkpoint holding it
loads with ``torch.load(weights_only=True)`` without allow-listing numpy:

``dict(torch=uint8 tensor, cuda=[uint8 tensor per device], numpy=dict(keys=int64 tensor (624,),
pos=int, has_gauss=int, cached_gaussian=float), random=dict(version=int, state=int64 tensor
(625,), gauss_next=float or None))``.
"""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


def capture_rng_state() -> dict:
    """The state of every global generator (see the module docstring for the layout)."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    # CUDA states only once CUDA is up: querying them would initialise CUDA in a CPU-only run.
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return dict(
        torch=torch.get_rng_state(),
        cuda=cuda,
        numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), cached_gaussian=float(cached_gaussian)),
        random=dict(version=int(version), state=torch.tensor(py_state, dtype=torch.int64),
                    gauss_next=gauss_next))


def restore_rng_state(state: dict) -> None:
    """Put back a :func:`capture_rng_state` result (CUDA only if as many devices are visible)."""
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda') or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    np_state = state['numpy']
    np.random.set_state(('MT19937', np_state['keys'].numpy().astype(np.uint32), np_state['pos'],
                         np_state['has_gauss'], np_state['cached_gaussian']))
    py_state = state['random']
    random.setstate((py_state['version'], tuple(int(v) for v in py_state['state'].tolist()),
                     py_state['gauss_next']))


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block with every global generator put back afterwards as it was before."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


@contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU generator, numpy's and Python's seeded with ``seed``, and
    all three put back afterwards. CUDA generators are left alone (data pipelines run on CPU)."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    # default_generator, not torch.manual_seed: that would reseed the CUDA generators too.
    torch.random.default_generator.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of dataset sample ``index`` in ``epoch`` of a run seeded with ``seed``: a 32-bit
    hash of the three, so neighbouring samples and epochs get unrelated random streams."""
    return int(np.random.SeedSequence([seed % 2**63, epoch, index]).generate_state(1)[0])
