"""One error type for bad input: it names the file (and line) so the CLI can print it as one line."""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad user input. ``str(err)`` reads ``path:line: message``."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        self.message, self.path, self.line = message, path, line
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


def require_file(path: str | os.PathLike) -> str:
    """Return ``path`` as a string, or raise InputError if it is not an existing file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such file" if not os.path.exists(path) else "not a file", path)
    return path
