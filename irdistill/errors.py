"""One error type for bad input: it names the file (and line) so the CLI can print it as one line."""

from __future__ import annotations

import math
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


# numbers, choices and environment variables: one checker each, for config values, argparse ``type=`` and os.environ
SEED_RANGE = {"low": 0, "high": 2**32 - 1}  # what numpy, random and torch all take as a seed
_INT = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)


def number(value, name: str = "", kind: type = int, low=None, high=None, above=None, below=None):
    """``value`` (a number, or its text from a command line or environment variable) as ``kind`` (int or float):
    finite, with ``low <= value <= high`` and ``above < value < below`` where given; else InputError
    ``<name> must be ...``."""
    if isinstance(value, str) and (kind is float or _INT.fullmatch(value)):
        try:
            value = kind(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        _fail(name, f"must be {'a whole number' if kind is int else 'a number'}, not {_show(value)}")
    if kind is float:
        try:
            value = float(value)
        except OverflowError:  # an int beyond float's range
            value = math.inf
        if not math.isfinite(value):
            _fail(name, f"must be a finite number, not {_show(value)}")
    for bound, ok, words in ((low, lambda b: value >= b, "at least"), (high, lambda b: value <= b, "at most"),
                             (above, lambda b: value > b, "above"), (below, lambda b: value < b, "below")):
        if bound is not None and not ok(bound):
            _fail(name, f"must be {words} {bound}, not {_show(value)}")
    return value


def choice(value, name: str, choices):
    """``value`` if it is one of ``choices`` (strings), else InputError ``<name> must be one of ...``."""
    if not isinstance(value, str) or value not in choices:
        _fail(name, f"must be one of {', '.join(choices)}, not {_show(value)}")
    return value


def env_int(variable: str, default: int, low: int = 0) -> int:
    """The environment variable ``variable`` as an int of at least ``low`` (``default`` when unset)."""
    return number(os.environ.get(variable, default), f"environment variable {variable}", int, low=low)


def arg_type(check, *args, **kwargs):
    """``check`` (e.g. ``number``) as an argparse ``type=``; argparse names the option in the error:
    ``type=arg_type(number, int, low=1)``."""
    import argparse

    def parse(text: str):
        try:
            return check(text, "", *args, **kwargs)
        except InputError as e:
            raise argparse.ArgumentTypeError(e.message) from None

    return parse


def _fail(name: str, words: str):
    raise InputError(f"{name} {words}" if name else words)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
