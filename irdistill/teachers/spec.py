"""Teacher specs: a dict, a YAML/JSON file, or the shorthand ``kind:model``, plus ``key=value`` options; and
``build_teacher``, which turns one into a Teacher of the registered kind."""

from __future__ import annotations

import json
import os

from ..errors import InputError
from .base import TEACHERS, Teacher


def _read(path: str) -> dict:
    import yaml

    if not os.path.exists(path):
        raise InputError("no such file", path)
    with open(path) as f:
        try:
            out = yaml.safe_load(f) if not path.endswith(".json") else json.load(f)
        except (yaml.YAMLError, json.JSONDecodeError) as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            raise InputError(f"malformed teacher file ({getattr(e, 'problem', None) or e})", path,
                             None if line is None else line + 1) from None
    if not isinstance(out, dict):
        raise InputError("a teacher file holds a mapping with a 'kind'", path)
    return out


def parse_spec(spec, options=()) -> dict:
    """A dict as is; a ``.yaml``/``.yml``/``.json`` file's content; else ``kind`` or ``kind:model``. Each option
    ``key=value`` (the value read as YAML) is set on the spec.

    >>> parse_spec("cross-encoder:my/model", ["max-length=256"])
    {'kind': 'cross-encoder', 'model': 'my/model', 'max_length': 256}
    """
    import yaml

    if isinstance(spec, dict):
        out = dict(spec)
    elif str(spec).endswith((".yaml", ".yml", ".json")):
        out = _read(str(spec))
    else:
        kind, _, model = str(spec).partition(":")
        out = {"kind": kind, **({"model": model} if model else {})}
    for opt in options or ():
        key, eq, value = opt.partition("=")
        if not eq:
            raise InputError(f"--option takes key=value, not {opt!r}")
        out[key.replace("-", "_")] = yaml.safe_load(value)
    if out.get("kind") not in TEACHERS:
        raise InputError(f"unknown teacher kind {out.get('kind')!r} (choose from {', '.join(TEACHERS)})")
    return out


def build_teacher(spec, dataset=None, options=()) -> Teacher:
    """A Teacher from a spec (see ``parse_spec``). ``text_view: en`` makes any teacher read that text view of the
    documents (Translate-Distill); teachers that need the collection (BM25's index, an ensemble's fit split) take it
    from ``dataset``."""
    spec = parse_spec(spec, options)
    kind, view = spec.pop("kind"), spec.pop("text_view", None)
    teacher = TEACHERS[kind].from_spec(spec, dataset, view)
    teacher.text_view = view
    return teacher
