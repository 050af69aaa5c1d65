"""The one error policy of every command: bad input or a failure ends the command with one line,
``error: <message>`` on stderr (the message names the file / key / argument and the fix), and
exit status 2 (bad input, as argparse uses for bad flags) or 1 (a failure); a bug keeps its
traceback.

Bad input (2): :class:`UsageError` (a flag combination or value the command refuses), a refused or
unreadable checkpoint, a config that names an unknown registry type or an override that looks like
a typo, bad data (``DatasetError``), a missing file, a ``ValueError`` / ``TypeError`` /
``pickle.UnpicklingError`` raised with a message for the user, a checkpoint that cannot be converted.
A ``KeyError`` counts as bad input when it is mmengine's "X is not in the ... registry" (the nearest
registered names are suggested) or a sentence (our components raise ``KeyError('invalid depth ...')``);
a bare ``KeyError('name')`` is a bug.

Failure (1): :class:`CommandFailed`, a diverged training run (``DivergenceError``).
"""
import functools
import pickle
import sys
from typing import Callable, Optional, Tuple

BAD_INPUT = 2
FAILURE = 1


class UsageError(ValueError):
    """A command-line flag (or combination) the command refuses; exit status 2."""


class CommandFailed(RuntimeError):
    """The command ran but did not succeed (nothing the user typed was wrong); exit status 1."""


class CommandExit(SystemExit):
    """The ``SystemExit`` a command ends with: ``code`` is the exit status, ``str()`` the line that
    was printed (``error: <message>``), so callers in Python can match it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(code)
        self.message = message

    def __str__(self) -> str:
        return f'error: {self.message}'


def classify(error: BaseException) -> Optional[Tuple[int, str]]:
    """``(exit status, message)`` for an error the user can fix or a failure; None for a bug."""
    from rcnn_plugins.datasets.errors import DatasetError
    from rcnn_plugins.engine.hooks import DivergenceError
    from rcnn_plugins.registry import unknown_type_hint
    if isinstance(error, (CommandFailed, DivergenceError)):
        return FAILURE, str(error)
    if isinstance(error, KeyError):
        message = str(error.args[0]) if error.args else ''
        hint = unknown_type_hint(message)
        if hint is not None:
            return BAD_INPUT, hint
        return (BAD_INPUT, message) if ' ' in message else None
    if isinstance(error, (DatasetError, FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError,
                          TypeError, pickle.UnpicklingError)):
        # UsageError, ConfigError, CheckpointFileError, ConversionError are ValueErrors;
        # UnsafeCheckpointError and RefusedGlobal are UnpicklingErrors.
        return BAD_INPUT, str(error)
    return None


def fail(message: str, code: int) -> CommandExit:
    """Print ``error: message`` on stderr and return the ``SystemExit`` to raise."""
    print(f'error: {message}', file=sys.stderr, flush=True)
    return CommandExit(message, code)


def command(main: Callable) -> Callable:
    """Decorate a command's ``main(argv=None)`` with the policy of the module docstring."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except SystemExit:
            raise
        except Exception as error:  # noqa: BLE001 - classified; bugs are re-raised
            verdict = classify(error)
            if verdict is None:
                raise
            raise fail(verdict[1], verdict[0]) from None
    return wrapped
