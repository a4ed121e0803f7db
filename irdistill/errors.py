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
        _fail(name, f"must be {'a whole number' if kind is int else 'a number'}, not {brief(value)}")
    if kind is float:
        try:
            value = float(value)
        except OverflowError:  # an int beyond float's range
            value = math.inf
        if not math.isfinite(value):
            _fail(name, f"must be a finite number, not {brief(value)}")
    for bound, ok, words in ((low, lambda b: value >= b, "at least"), (high, lambda b: value <= b, "at most"),
                             (above, lambda b: value > b, "above"), (below, lambda b: value < b, "below")):
        if bound is not None and not ok(bound):
            _fail(name, f"must be {words} {bound}, not {brief(value)}")
    return value


def choice(value, name: str, choices):
    """``value`` if it is one of ``choices`` (strings), else InputError ``<name> must be one of ...``."""
    if not isinstance(value, str) or value not in choices:
        _fail(name, f"must be one of {', '.join(choices)}, not {brief(value)}")
    return value


def env_int(variable: str, default: int, low: int = 0) -> int:
    """The environment variable ``variable`` as an int of at least ``low`` (``default`` when unset)."""
    return number(os.environ.get(variable, default), f"environment variable {variable}", int, low=low)


def typed(value, annotation, name: str):
    """``value`` if it is of the type ``annotation`` (``float`` admits ints, ``X | None`` None, ``object`` anything;
    a bool is no number), else InputError ``<name> must be int or null, not ...``."""
    allowed = _allowed(annotation)
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        names = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in allowed}))
        _fail(name, f"must be {names}, not {brief(value)}")
    return value


def _allowed(annotation) -> tuple:
    import types
    import typing

    if annotation is object:
        return (object,)
    union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    out = []
    for a in typing.get_args(annotation) if union else (annotation,):
        a = typing.get_origin(a) or a
        out += [int, float] if a is float else [tuple, list] if a is tuple else [a]  # YAML's sequences are lists
    return tuple(t for t in out if isinstance(t, type)) or (object,)  # a Literal, a TypeVar: unchecked


def keyword_types(*functions, skip=()) -> dict:
    """Keyword -> annotation (``object`` where there is none) of the parameters of ``functions``, but ``skip``; with
    a ``**kwargs`` among them, any keyword (a defaultdict)."""
    import collections
    import inspect
    import typing

    out, anything = {}, False
    for fn in functions:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # annotated with names its module cannot resolve at run time
            hints = {}
        for p in inspect.signature(fn).parameters.values():
            anything |= p.kind == p.VAR_KEYWORD
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in ("self", *skip):
                out.setdefault(p.name, hints.get(p.name, object))
    return collections.defaultdict(lambda: object, out) if anything else out


def check_options(options: dict, types: dict, ranges: dict, flag: str = "option") -> None:
    """Each of ``options`` that ``types`` knows (``keyword_types``) of its type and in its range (``ranges``: key ->
    ``number``'s bounds); errors name it ``<flag> <key>``."""
    for key, value in options.items():
        if key in types:
            typed(value, types[key], f"{flag} {key}")
        if key in ranges and isinstance(value, (int, float)) and not isinstance(value, bool):
            number(value, f"{flag} {key}", int if isinstance(value, int) else float, **ranges[key])


def key_value(pair, flag: str) -> tuple[str, object]:
    """``"key=value"`` from the option ``flag`` (``--set``, ``--option``, ...) as ``(key, value read as YAML)``."""
    import yaml

    key, eq, value = str(pair).partition("=")
    if not eq or not key.strip():
        raise InputError(f"{flag} takes key=value, not {brief(pair)}")
    try:
        return key.strip(), yaml.safe_load(value)
    except (yaml.YAMLError, RecursionError, ValueError):
        raise InputError(f"{flag} {key.strip()}: the value is not YAML ({brief(value)})") from None


def read_config(path, what: str = "YAML"):
    """The content of a YAML file (JSON for ``.json``); a missing, unreadable or malformed one is an InputError
    naming it (and the line)."""
    import json

    import yaml

    path = require_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed {what} ({e.msg})", path, e.lineno) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"malformed {what} ({getattr(e, 'problem', None) or e})", path,
                         mark.line + 1 if mark else None) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path) from None
    except (RecursionError, ValueError):  # nested too deep, a number too long
        raise InputError(f"malformed {what} (nested too deep, or a number too long)", path) from None


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


def brief(value) -> str:
    """``repr(value)``, cut to 60 characters: a value quoted in a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
