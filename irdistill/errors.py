"""One error type for bad input: it names the file (and line) so the CLI can print it as one line."""

from __future__ import annotations

import os
import re


class InputError(ValueError):
    """Bad user input. ``str(err)`` reads ``path:line: message``, on one line."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        message = " ".join(str(message).splitlines())  # e.g. a pyarrow error quoted in the message
        self.message, self.path, self.line = message, path, line
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


def require_file(path: str | os.PathLike) -> str:
    """Return ``path`` as a string, or raise InputError if it is not an existing, readable file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such file" if not os.path.exists(path) else "not a file", path)
    if not os.access(path, os.R_OK):
        raise InputError("cannot read this file (permission denied)", path)
    return path


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}", re.ASCII)


def safe_name(name, what: str = "name", source: str | os.PathLike | None = None) -> str:
    """Return ``name`` if it can be used as one folder name: 1-200 characters of ``A-Z a-z 0-9 . _ @ + -``, starting
    with a letter or digit, without ``..``; else raise InputError (so ``x/../../escaped`` never leaves its folder)."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise InputError(f"{what} {name!r} is not a safe name: use 1-200 of the characters A-Z a-z 0-9 . _ @ + -, "
                         "starting with a letter or digit, and no '..'", source)
    return name
