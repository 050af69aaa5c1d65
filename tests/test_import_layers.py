"""Lower layers never import higher ones: every ``import`` of every module under rcnn_plugins/
(read with ``ast``, so imports inside functions count too) is checked against the layer order

    structures, registry, fileio, config_utils, rng  <  models, datasets
    <  evaluation, visualization, analysis, deployment  <  engine  <  apis  <  cli

(``tools/`` and ``benchmarks/`` are above all and not checked). A module may import its own
layer and the layers below; packages of one layer may import each other as long as no import
cycle between packages appears (checked too).
"""
import ast
import os
import os.path as osp

import pytest
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
PACKAGE = osp.join(REPO, 'rcnn_plugins')

LAYERS = [
    {'structures', 'registry', 'mmdet_type_names', 'fileio', 'config_utils', 'rng', '__init__'},
    {'models', 'datasets'},
    {'evaluation', 'visualization', 'analysis', 'deployment'},
    {'engine'},
    {'apis'},
    {'cli'},
]
LAYER_OF = {name: k for k, names in enumerate(LAYERS) for name in names}


def modules():
    for root, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(root, name)
                rel = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
                yield path, rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def top_package(dotted: str) -> str:
    """``rcnn_plugins.models.necks.fpn`` -> ``models``; the package itself -> ``__init__``."""
    parts = dotted.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def imported(path: str, module: str):
    """The rcnn_plugins modules ``path`` imports (absolute names), with line numbers."""
    is_pkg = path.endswith('__init__.py')
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == 'rcnn_plugins':
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split('.')
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            if target.split('.')[0] != 'rcnn_plugins':
                continue
            if target == 'rcnn_plugins':  # from rcnn_plugins import cli, config_utils
                for alias in node.names:
                    yield f'rcnn_plugins.{alias.name}', node.lineno
            else:
                yield target, node.lineno


def edges():
    for path, module in modules():
        for target, line in imported(path, module):
            yield module, target, f'{osp.relpath(path, REPO)}:{line}'


def test_every_package_has_a_layer():
    unknown = sorted({top_package(m) for _, m in modules()} - set(LAYER_OF))
    assert not unknown, f'add {unknown} to LAYERS here and to the layer list of docs/ARCHITECTURE.md'


def test_no_upward_import():
    upward = [f'{where}: {src} imports {dst}' for src, dst, where in edges()
              if LAYER_OF.get(top_package(dst), -1) > LAYER_OF.get(top_package(src), 99)]
    assert not upward, 'imports against the layer order:\n' + '\n'.join(upward)


def test_no_cycle_between_packages():
    graph = {}
    for src, dst, _ in edges():
        a, b = top_package(src), top_package(dst)
        if a != b and b != '__init__':
            graph.setdefault(a, set()).add(b)

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(f'{a} <-> {b}' for a in graph for b in graph[a] if reaches(b, a, {b}))
    assert not cycles, f'import cycles between packages: {cycles}'


@pytest.mark.parametrize('source, expected', [
    ('from ..engine import x', {'rcnn_plugins.engine'}),
    ('from . import y', {'rcnn_plugins.models'}),
    ('import rcnn_plugins.cli.train', {'rcnn_plugins.cli.train'}),
    ('from rcnn_plugins import cli', {'rcnn_plugins.cli'}),
    ('def f():\n    from ...apis import z', {'rcnn_plugins.apis'}),
])
def test_the_parser_sees_relative_and_nested_imports(tmp_path, source, expected):
    """The checker itself: relative imports resolve against the module's package, imports inside
    functions count (a module rcnn_plugins.models.dense_heads.rpn_head for the first four)."""
    path = tmp_path / 'm.py'
    path.write_text(source)
    module = 'rcnn_plugins.models.dense_heads.m' if source.startswith('def') else 'rcnn_plugins.models.m'
    assert {t for t, _ in imported(str(path), module)} == expected
