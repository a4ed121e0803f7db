"""Line readers for JSONL and TSV that report the file and line of bad input, and atomic file writes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Iterator, Sequence

from ..errors import InputError, require_file


def _open_text(path: str):
    if path.endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_jsonl(path, required: Sequence[str] = ()) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each non-blank line; every record must hold the ``required`` keys."""
    path = require_file(path)
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"malformed JSON ({e.msg})", path, n) from None
            if not isinstance(rec, dict):
                raise InputError("expected a JSON object", path, n)
            missing = [k for k in required if k not in rec]
            if missing:
                raise InputError(f"missing field(s) {', '.join(missing)}", path, n)
            yield n, rec


def read_tsv(path, columns: int, header: Sequence[str] | None = None, sep: str | None = "\t"):
    """Yield ``(line_number, fields)`` with exactly ``columns`` fields per line.

    ``header``: if the first line starts with these names it is skipped. ``sep=None`` splits on any whitespace
    (TREC files)."""
    path = require_file(path)
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            fields = line.split(sep)
            if n == 1 and header and [x.strip().lower() for x in fields[: len(header)]] == list(header):
                continue
            if len(fields) != columns:
                raise InputError(f"expected {columns} columns, found {len(fields)}", path, n)
            yield n, fields


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
