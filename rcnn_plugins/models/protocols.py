"""Component contracts as code: which protocol each component folder's classes must satisfy,
and a checker that compares a class's methods and signatures with its protocol.

The protocols live next to their folders (``task_modules/assigners/protocol.py``, ...); this
module only gathers them. ``tests/models/test_protocols.py`` runs :func:`registry_violations`
over ``TASK_UTILS`` and ``MODELS``, so every component registered from these folders, today's
and tomorrow's, is checked the day it is registered.
"""
import inspect
from typing import Dict, List, Sequence, Tuple, Type

from torch import nn

from .dense_heads.protocol import DenseHead
from .roi_heads.bbox_heads.protocol import BBoxHeadProtocol, TwoBranchBBoxHeadProtocol
from .roi_heads.roi_extractors.protocol import RoIExtractor
from .task_modules.assigners.protocol import Assigner, IoUCalculator
from .task_modules.coders.protocol import BBoxCoder
from .task_modules.prior_generators.protocol import PriorGenerator
from .task_modules.samplers.protocol import Sampler

# module prefix of a component folder -> the protocols a class registered from it may satisfy.
FOLDER_PROTOCOLS: Dict[str, Tuple[type, ...]] = {
    'rcnn_plugins.models.task_modules.assigners': (Assigner, IoUCalculator),
    'rcnn_plugins.models.task_modules.samplers': (Sampler,),
    'rcnn_plugins.models.task_modules.coders': (BBoxCoder,),
    'rcnn_plugins.models.task_modules.prior_generators': (PriorGenerator,),
    'rcnn_plugins.models.roi_heads.roi_extractors': (RoIExtractor,),
    'rcnn_plugins.models.roi_heads.bbox_heads': (BBoxHeadProtocol, TwoBranchBBoxHeadProtocol),
    'rcnn_plugins.models.dense_heads': (DenseHead,),
}


def _members(protocol: type) -> List[str]:
    """The methods a protocol declares (``__call__`` included, other dunders not)."""
    return [name for name, value in vars(protocol).items()
            if callable(value) and (name == '__call__' or not name.startswith('_'))]


def _signature(cls: type, name: str) -> inspect.Signature:
    # An nn.Module is called through forward(); its __call__ is torch's generic wrapper.
    if name == '__call__' and issubclass(cls, nn.Module):
        name = 'forward'
    return inspect.signature(getattr(cls, name))


def _parameter_problems(proto_sig: inspect.Signature, sig: inspect.Signature) -> List[str]:
    """What a call written against ``proto_sig`` would break on ``sig``."""
    params = list(sig.parameters.values())
    names = {p.name: p for p in params}
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    problems = []
    for p in proto_sig.parameters.values():
        if p.name == 'self' or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        own = names.get(p.name)
        if own is None:
            if not (var_kw or (var_pos and p.default is p.empty)):
                problems.append(f'has no parameter {p.name!r}')
        elif p.default is not p.empty and own.default is own.empty and own.kind is not own.VAR_KEYWORD:
            problems.append(f'parameter {p.name!r} needs a default (callers may omit it)')
    proto_names = set(proto_sig.parameters)
    for p in params:
        if p.name != 'self' and p.name not in proto_names and p.default is p.empty \
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(f'requires parameter {p.name!r} that the protocol does not pass')
    return problems


def protocol_violations(cls: type, protocol: type) -> List[str]:
    """Why ``cls`` does not satisfy ``protocol``: missing methods and signatures a caller
    written against the protocol would break on. Empty when it conforms."""
    problems = []
    for name in _members(protocol):
        if not callable(getattr(cls, name, None)):
            problems.append(f'{name}() is missing')
            continue
        try:
            sig = _signature(cls, name)
        except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
            continue
        method = 'forward' if name == '__call__' and issubclass(cls, nn.Module) else name
        problems += [f'{method}(): {p}' for p in _parameter_problems(inspect.signature(getattr(protocol, name)), sig)]
    return problems


def folder_protocols(cls: type) -> Sequence[type]:
    """The protocols the folder that ``cls`` is defined in asks for (empty outside those folders)."""
    for prefix, protocols in FOLDER_PROTOCOLS.items():
        if cls.__module__ == prefix or cls.__module__.startswith(prefix + '.'):
            return protocols
    return ()


def registry_violations(registry) -> Dict[str, List[str]]:
    """For every class registered in ``registry`` from a component folder that satisfies none
    of its folder's protocols: ``{type name: problems against the closest protocol}``."""
    registry.import_from_location()
    out: Dict[str, List[str]] = {}
    for name, cls in registry.module_dict.items():
        protocols: Sequence[Type] = folder_protocols(cls) if inspect.isclass(cls) else ()
        if not protocols:
            continue
        found = [protocol_violations(cls, proto) for proto in protocols]
        if all(found):
            out[name] = min(found, key=len)
    return out
