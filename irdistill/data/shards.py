"""Shards of a query set: a stable split of query ids that every process and machine computes alike."""

from __future__ import annotations

import zlib

from ..errors import InputError, env_int


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``; without a spec, torchrun's RANK/WORLD_SIZE, else ``(0, 1)``.

    >>> parse_shard("1/4")
    (1, 4)
    """
    if spec:
        try:
            i, n = (int(x) for x in spec.split("/"))
        except ValueError:
            raise InputError(f"--shard must look like 0/4, not {spec!r}") from None
        if not 0 <= i < n:
            raise InputError(f"--shard {spec}: need 0 <= i < n")
        return i, n
    rank, world = env_int("RANK", 0), env_int("WORLD_SIZE", 1, low=1)
    local_rank()  # checked with its siblings, whether this process reads it or not
    if rank >= world:
        raise InputError(f"environment variable RANK={rank} must be below WORLD_SIZE={world}")
    return rank, world


def local_rank() -> int:
    """torchrun's LOCAL_RANK (this process's place on its machine), else 0."""
    return env_int("LOCAL_RANK", 0)


def in_shard(qid: str, shard: tuple[int, int]) -> bool:
    """A stable split of query ids (crc32, the same on every machine and Python process).

    >>> [in_shard(q, (0, 2)) for q in ("1", "2", "3", "4", "5")]
    [False, False, False, True, True]
    """
    return shard[1] == 1 or zlib.crc32(qid.encode()) % shard[1] == shard[0]


def shard_of(run, shard: tuple[int, int]):
    """The rows of ``run`` (a DataFrame with ``qid``) whose query is in ``shard``."""
    import pandas as pd

    return run if shard[1] == 1 else run[run["qid"].isin([q for q in pd.unique(run["qid"]) if in_shard(q, shard)])]


def shard_path(path: str, shard: tuple[int, int]) -> str:
    """Where shard ``(i, n)`` of a file goes: ``path`` itself for one shard, else ``.part-i-of-n`` before the extension.

    >>> shard_path("runs/train.parquet", (1, 4))
    'runs/train.part-1-of-4.parquet'
    """
    if shard[1] == 1:
        return path
    import os

    stem, ext = os.path.splitext(path)
    return f"{stem}.part-{shard[0]}-of-{shard[1]}{ext}"
