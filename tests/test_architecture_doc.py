"""docs/ARCHITECTURE.md names every module under rcnn_plugins/, so the map cannot drift from the code.

A module ``rcnn_plugins/a/b/c.py`` counts as named when its path below the package, ``a/b/c.py``,
appears in the document, or when the document lists ``c.py`` on a line under the folder line
``a/b/`` (the tree's way of naming it: ``  samplers/`` ... ``random_sampler.py``), or after
``b/`` on one line (``samplers/random_sampler.py``). A package (a folder with ``__init__.py``)
counts when ``a/b/`` appears. Where several modules share a line (``cli.py, models.py, ...``)
the folder prefix may be left out after the first.
"""
import os
import os.path as osp
import re
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
PACKAGE = osp.join(REPO, 'rcnn_plugins')
DOC = osp.join(REPO, 'docs', 'ARCHITECTURE.md')


def named_paths(text: str) -> set:
    """Every ``x/y/z.py`` and ``x/y/`` the tree of the document names (indentation = nesting)."""
    names = set()
    stack = []  # (indent, folder path)
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped:
            continue
        indent = len(line) - len(stripped)
        token = stripped.split()[0].rstrip(',')
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ''
        if token.endswith('/'):
            folder = parent + token if not token.startswith('rcnn_plugins/') else ''
            names.add(folder)
            stack.append((indent, folder))
        # every a/b.py or b.py on the line, relative to the enclosing folder
        first_dir = ''
        for match in re.findall(r'[\w/]+\.py', stripped):
            if '/' in match:
                first_dir = match.rsplit('/', 1)[0] + '/'
                names.add(parent + match)
                names.add(match)
                for k in range(len(match.split('/')) - 1):
                    names.add(parent + '/'.join(match.split('/')[:k + 1]) + '/')
            else:
                names.add(parent + first_dir + match)
                names.add(parent + match)
    return names


def package_modules():
    for root, _, files in os.walk(PACKAGE):
        rel_dir = osp.relpath(root, PACKAGE).replace(os.sep, '/')
        rel_dir = '' if rel_dir == '.' else rel_dir + '/'
        for name in files:
            if name == '__init__.py':
                yield rel_dir or '__init__.py'
            elif name.endswith('.py'):
                yield rel_dir + name


def test_every_module_is_named_in_architecture_md():
    named = named_paths(open(DOC).read())
    missing = sorted(m for m in package_modules() if m not in named)
    assert not missing, ('modules not named in docs/ARCHITECTURE.md (add one line each under their folder): '
                         + ', '.join(missing))


def test_the_tree_reader():
    """The reader itself: nested folders, a path with a folder, siblings sharing a line."""
    text = ('rcnn_plugins/\n  registry.py   x\n  models/\n    backbones/resnet.py  ResNet\n'
            '    detectors/\n      rpn.py   RPN\n  benchmark/\n    cli.py, models.py   tools\n')
    named = named_paths(text)
    assert {'registry.py', 'models/', 'models/backbones/resnet.py', 'models/backbones/',
            'models/detectors/rpn.py', 'benchmark/cli.py', 'benchmark/models.py'} <= named
    assert 'models/rpn.py' not in named or 'models/detectors/rpn.py' in named
