"""A scoring loop with a fake teacher, run as its own process by test_cache_concurrency.py.

    python cache_worker.py CACHE KEY --queries N --docs K [--shard i/n] [--claim] [--block B] [--delay S]
                           [--go FILE] [--die-after BLOCKS]

It follows the loop of irdistill.cache.scores' module docstring: claim a block, score what was granted, commit.
``--die-after`` kills the process (SIGKILL) after that many blocks, holding the claim of the next block unscored.
Prints one JSON line: the pairs this process scored and committed."""

import argparse
import json
import os
import signal
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from irdistill.cache import ScoreCache  # noqa: E402


def candidates(nq: int, k: int) -> dict[str, list[str]]:
    return {f"q{i}": [f"d{(i * 7 + j) % 997}" for j in range(k)] for i in range(nq)}


def fake_score(qid: str, docid: str) -> float:
    return (zlib.crc32(f"{qid}|{docid}".encode()) % 10_000) / 100.0


def in_shard(qid: str, shard: tuple[int, int]) -> bool:
    return shard[1] == 1 or zlib.crc32(qid.encode()) % shard[1] == shard[0]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("cache")
    p.add_argument("key")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--docs", type=int, default=5)
    p.add_argument("--shard", default="0/1")
    p.add_argument("--claim", action="store_true")
    p.add_argument("--block", type=int, default=5)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--go")
    p.add_argument("--die-after", type=int)
    args = p.parse_args()
    shard = tuple(int(x) for x in args.shard.split("/"))
    cands = candidates(args.queries, args.docs)
    cache = ScoreCache(args.cache)
    if args.go:  # say this process is ready, then start together with the other processes
        # ready means imported: the cache defers pandas and pyarrow.dataset to first use (irdistill/lazy.py), and a
        # worker importing them after the barrier (a second or more) starts after the other has scored everything
        import pandas  # noqa: F401
        import pyarrow.dataset  # noqa: F401

        open(f"{args.go}.ready-{os.getpid()}", "w").close()
    while args.go and not os.path.exists(args.go):
        time.sleep(0.005)
    cache.register(args.key, {"kind": "fake"})
    done = cache.scored_qids(args.key)
    todo = [q for q in cands if in_shard(q, shard) and q not in done]
    scored = 0
    for b, start in enumerate(range(0, len(todo), args.block)):
        block = todo[start : start + args.block]
        mine = set(cache.claim(args.key, block)) if args.claim else set(block)
        if args.die_after is not None and b == args.die_after:
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-block: claimed, not committed
        qids = [q for q in block if q in mine for _ in cands[q]]
        docids = [d for q in block if q in mine for d in cands[q]]
        time.sleep(args.delay)
        cache.commit(args.key, qids, docids, [fake_score(q, d) for q, d in zip(qids, docids)])
        scored += len(qids)
    cache.release(args.key)
    print(json.dumps({"scored": scored}))


if __name__ == "__main__":
    main()
