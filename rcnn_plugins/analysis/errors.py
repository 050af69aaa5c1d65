"""One-line errors for the analysis tools: a wrong path, file or key is the user's to fix, not a bug.

The analysis functions raise ``FileNotFoundError`` / ``ValueError`` / ``KeyError`` with messages
that name the file or record and the fix; the tools print that message alone instead of a traceback.
"""
import functools
import os.path as osp
import pickle
import sys
from typing import Callable

#: What a bad input raises (UnpicklingError: a refused or unreadable results pickle).
USER_ERRORS = (FileNotFoundError, ValueError, KeyError, pickle.UnpicklingError)


def exit_on_user_error(main: Callable) -> Callable:
    """Wrap a tool's ``main(argv=None)``: a :data:`USER_ERRORS` exception exits with status 1 and
    ``<tool>: error: <message>``."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as err:
            # str(KeyError) quotes its message; the message itself reads better.
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            raise SystemExit(f'{osp.basename(sys.argv[0])}: error: {message}') from None
    return wrapped
