"""Checks of ``--cfg-options`` overrides against the config they change.

mmengine's ``Config.merge_from_dict`` creates whatever key it is given, so a typo is silent:
``default_hooks.chekpoint.interval=1`` adds a hook entry without a type (an obscure error much
later), ``model.test_cfg.rcnn.score_th=0.5`` is never read at all. :func:`check_override_keys`
(used by ``tools/train.py`` / ``tools/test.py``)
walks each dotted key through the config and refuses one whose first missing part is a near
miss (``difflib`` ratio >= 0.8) of a key that exists at that place; keys with no near miss are
new keys on purpose (``default_hooks.checkpoint.max_keep_ckpts=3``) and pass.
"""
import difflib
from typing import Optional


def typo_in_override(cfg, dotted_key: str) -> Optional[str]:
    """The message for ``dotted_key`` if it looks like a typo of an existing key, else None.

    Args:
        cfg: the mmengine ``Config`` (or a dict) before the override is merged.
        dotted_key: a ``--cfg-options`` key such as ``model.backbone.depth`` (list items by index:
            ``param_scheduler.0.gamma``).
    """
    node = dict(cfg.items())
    done = []
    for part in dotted_key.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit():
            if int(part) >= len(node):
                return None  # mmengine reports the bad index itself
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                keys = [k for k in node if isinstance(k, str)]
                close = difflib.get_close_matches(part, keys, n=1, cutoff=0.8)
                if not close:
                    return None  # a new key
                where = '.'.join(done + [close[0]])
                return (f'--cfg-options {dotted_key}: the config has no {".".join(done + [part])}; did you '
                        f'mean {where}? (keys there: {", ".join(sorted(keys))})')
            node = node[part]
        else:
            return None  # overriding a value by a sub-key: mmengine decides
        done.append(part)
    return None

