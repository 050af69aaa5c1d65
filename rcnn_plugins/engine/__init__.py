"""Runner-side additions: hooks, train loops, the CPU bf16 optimizer wrapper (registered when the
Runner looks them up), and :func:`build_runner` / :func:`setup_runtime`, which every entry point
calls (safe checkpoint loading is installed there, not by importing this package)."""
from .runner import REPLACED_NAMES, build_runner, release_process_group, setup_runtime

__all__ = ['REPLACED_NAMES', 'build_runner', 'release_process_group', 'setup_runtime']
