"""What every teacher is: a scorer of (query, passages) lists with a stable identity that keys the score cache."""

from __future__ import annotations

import glob
import hashlib
import json
import os

import numpy as np


def weights_hash(path: str) -> str | None:
    """A fingerprint of the weight files in a local model folder (name, size, first and last MiB of each), or None."""
    if not os.path.exists(path):
        return None
    files = [path] if os.path.isfile(path) else sorted(
        f for ext in ("safetensors", "bin", "gguf", "onnx", "pt") for f in glob.glob(os.path.join(path, "**", f"*.{ext}"), recursive=True))
    h = hashlib.sha1()
    for f in files:
        size = os.path.getsize(f)
        h.update(f"{os.path.relpath(f, path)}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


class Teacher:
    """Subclasses set ``kind``, fill ``config()`` with everything that changes their scores, and implement
    ``score_pairs`` (pointwise) or ``score_lists`` (listwise)."""

    kind = "teacher"
    batch_size = 32
    text_view: str | None = None  # read another text of each document (e.g. "en", the source of a translation)

    def config(self) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        view = {"text_view": self.text_view} if self.text_view else {}
        return {"kind": self.kind, **self.config(), **view}

    @property
    def id(self) -> str:
        """``<kind>-<12 hex>``: the hash of ``describe()``; two teachers share it only if they score alike."""
        digest = hashlib.sha1(json.dumps(self.describe(), sort_keys=True, default=str).encode()).hexdigest()[:12]
        return f"{self.kind}-{digest}"

    def score_pairs(self, queries: list[str], passages: list[str]) -> np.ndarray:
        raise NotImplementedError

    def score_lists(self, lists: list[tuple[str, list[str]]], docids: list[list[str]] | None = None) -> list[np.ndarray]:
        """Scores for each ``(query, passages)``; pointwise teachers score all pairs in one batch.

        ``docids`` (the passages' ids) is for teachers that look documents up in an index, such as BM25."""
        queries = [q for q, ps in lists for _ in ps]
        passages = [p for _, ps in lists for p in ps]
        flat = np.asarray(self.score_pairs(queries, passages), dtype=np.float32) if passages else np.zeros(0, np.float32)
        out, i = [], 0
        for _, ps in lists:
            out.append(flat[i : i + len(ps)])
            i += len(ps)
        return out
