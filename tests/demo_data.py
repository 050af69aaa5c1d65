"""Tiny generated demo datasets for tests (``tools/make_demo_data.py`` run in this process)."""
import importlib.util
import os.path as osp

from repo_paths import REPO_ROOT


def make_tiny_demo_data(root, num_train: int, num_val: int, min_size: int = 64, max_size: int = 96) -> str:
    """Write ``num_train`` + ``num_val`` shapes images of ``min_size``-``max_size`` px and their COCO
    json under ``root``; returns ``root`` as a string."""
    spec = importlib.util.spec_from_file_location('make_demo_data', osp.join(REPO_ROOT, 'tools', 'make_demo_data.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(['--out', str(root), '--num-train', str(num_train), '--num-val', str(num_val),
                 '--min-size', str(min_size), '--max-size', str(max_size)])
    return str(root)
