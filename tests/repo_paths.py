"""The repository root for tests, wherever in the mirrored tests/ tree a test file lives.

Found by walking up from this file to the folder holding ``pyproject.toml``, so moving a test
file to another depth never breaks the paths it builds (configs/, tools/, docs/).
"""
import os.path as osp


def _find_repo_root(start: str) -> str:
    path = osp.dirname(osp.abspath(start))
    while not osp.isfile(osp.join(path, 'pyproject.toml')):
        parent = osp.dirname(path)
        if parent == path:
            raise RuntimeError(f'no pyproject.toml above {start}: run the tests from a repository checkout')
        path = parent
    return path


REPO_ROOT = _find_repo_root(__file__)
TESTS_DIR = osp.join(REPO_ROOT, 'tests')
