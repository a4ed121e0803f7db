"""Encode a corpus with a sentence-transformers model into resumable chunks on disk: in this process, through a pool
of worker processes (sentence-transformers' multi-process pool: one per GPU, or N on the CPU), or by the ranks of a
torchrun job, each encoding its share of the chunks into the same folder."""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import json
import os

import numpy as np

from ..progress import bar as progress_bar
from ..data.corpus import Corpus
from ..data.io import atomic_path
from ..data.shards import local_rank, parse_shard
from ..models import fingerprint


def wants_normalized(model) -> bool:
    """Cosine models are searched by inner product over unit vectors."""
    return getattr(model, "similarity_fn_name", "cosine") == "cosine"


# processes ----------------------------------------------------------------------------------------------------------
def local_device() -> str | None:
    """This rank's GPU under torchrun (``cuda:LOCAL_RANK``, wrapping round the GPUs); None (the model's own choice)
    elsewhere."""
    import torch

    if parse_shard(None)[1] == 1 or not torch.cuda.is_available():
        return None
    return f"cuda:{local_rank() % torch.cuda.device_count()}"


def use_local_gpu() -> None:
    """Under torchrun, make this rank's GPU the current one, so that ``cuda`` means it (``local_device``)."""
    device = local_device()
    if device:
        import torch

        torch.cuda.set_device(device)


def worker_devices(workers: int) -> list[str]:
    """Where ``workers`` encoding processes run: one GPU each, round robin over the GPUs torch sees (a torchrun rank
    starts at its own), else the CPU."""
    import torch

    if not torch.cuda.is_available():
        return ["cpu"] * workers
    first = local_rank() * workers
    return [f"cuda:{(first + i) % torch.cuda.device_count()}" for i in range(workers)]


@contextlib.contextmanager
def worker_pool(model, workers: int = 1):
    """sentence-transformers' multi-process pool of ``workers`` processes for ``model`` (``worker_devices``), or None
    for one worker: encode in this process. CPU workers split the cores between them (``OMP_NUM_THREADS``), so they do
    not oversubscribe them. The model is back on its device when the block ends."""
    if workers <= 1:
        yield None
        return
    devices, device = worker_devices(workers), model.device
    saved = os.environ.get("OMP_NUM_THREADS")
    if devices[0] == "cpu":  # the spawned workers read it when torch starts
        os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // workers))
    try:
        pool = model.start_multi_process_pool(devices)
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    try:
        yield pool
    finally:
        model.stop_multi_process_pool(pool)
        pool.clear()  # drop the queues now: their semaphores go with them, not as "leaked" at exit
        model.to(device)


def barrier() -> None:
    """Wait for every rank of a torchrun job (a gloo process group, started on first use); nothing in one process."""
    if parse_shard(None)[1] == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():  # a long timeout: rank 0 may build an index of millions of vectors meanwhile
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=12))
    dist.barrier()


def on_first_rank(build, load):
    """``build()`` in rank 0 of a torchrun job (or the only process); the other ranks wait for it, then ``load()``."""
    rank = parse_shard(None)[0]
    built = build() if rank == 0 else None
    barrier()
    return built if rank == 0 else load()


# chunked, resumable encoding ----------------------------------------------------------------------------------------
def encode_in_chunks(model, folder, meta: dict, documents: int, chunk: int, done, write, desc: str = "encoding",
                     workers: int = 1, progress: bool = True, rebuild: bool = False, stale=("part-*",)) -> None:
    """Encode ``documents`` into ``folder`` chunk by chunk: chunk ``i`` covers documents ``i * chunk`` up to
    ``(i + 1) * chunk``; ``done(i)`` says whether it is on disk, ``write(i, start, stop, pool, bar)`` encodes and
    writes it (atomically; ``pool``: the worker pool, or None) and moves ``bar`` on by its documents.

    ``meta.json`` holds ``meta``: a folder of another ``meta`` (another corpus or model), or ``rebuild``, first loses
    its files matching ``stale``; finished chunks are kept, so an interrupted run resumes. Under torchrun, rank ``r``
    of ``n`` encodes the chunks ``i % n == r`` on its own GPU, and every rank returns once all chunks are done: every
    rank must call it (it waits for the others)."""
    rank, world = parse_shard(None)
    meta = json.loads(json.dumps(meta))  # as read back
    meta_path = os.path.join(os.fspath(folder), "meta.json")
    if rank == 0:
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                if rebuild or json.load(f) != meta:
                    for p in (p for pattern in stale for p in glob.glob(os.path.join(folder, pattern))):
                        os.remove(p)
        with atomic_path(meta_path) as tmp, open(tmp, "w") as f:
            json.dump(meta, f, indent=1)
    barrier()  # the others start once the folder is fit for this meta
    if world > 1 and local_device():
        model.to(local_device())
    spans = [(i, start, min(start + chunk, documents)) for i, start in enumerate(range(0, documents, chunk))
             if i % world == rank]
    todo = [s for s in spans if not done(s[0])]
    with progress_bar(total=sum(stop - start for _, start, stop in spans), desc=desc, unit="doc",
                      show=progress and rank == 0) as bar:
        bar.update(sum(stop - start for _, start, stop in spans) - sum(stop - start for _, start, stop in todo))
        with worker_pool(model, workers if todo else 1) as pool:
            for i, start, stop in todo:
                write(i, start, stop, pool, bar)
    barrier()


def encode_texts(model, texts: list[str], role: str = "document", batch_size: int = 64, bar=None,
                 pool=None) -> np.ndarray:
    """Encode in length-sorted batches (short with short: less padding), in the input order, updating ``bar`` after
    each; through ``pool`` (``worker_pool``) when given, each worker taking length-sorted slices of 4 batches.

    ``role`` is ``query`` or ``document``: the model's own query/document prompts apply (``encode_query``)."""
    encode = model.encode_query if role == "query" else model.encode_document
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    step = batch_size * 4
    # the bar moves every batch (every 4 slices a worker with a pool): on a loaded CPU a 256-document step of a
    # 256-token model took over a minute, and a bar that still for that long looks hung
    span = step * 4 * len(pool["processes"]) if pool else batch_size
    options = {"pool": pool, "chunk_size": step} if pool else {}
    for i in range(0, len(texts), span):
        idx = order[i : i + span]
        out[idx] = encode([texts[j] for j in idx], batch_size=batch_size, convert_to_numpy=True,
                          normalize_embeddings=wants_normalized(model), show_progress_bar=False, **options)
        if bar is not None:
            bar.update(len(idx))
    return out


class Embeddings:
    """A folder of ``part-NNNNN.npy`` chunks plus ``meta.json``; chunk ``i`` holds rows ``i*chunk .. (i+1)*chunk``."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        with open(os.path.join(self.folder, "meta.json")) as f:
            self.meta = json.load(f)

    def parts(self):
        for path in sorted(glob.glob(os.path.join(self.folder, "part-*.npy"))):
            yield np.load(path, mmap_mode="r")

    def __len__(self) -> int:
        return self.meta["documents"]

    @property
    def dim(self) -> int:
        return self.meta["dim"]

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` rows drawn uniformly (all rows when ``n >= len``), for training quantisers."""
        rows = np.sort(np.random.default_rng(seed).choice(len(self), min(n, len(self)), replace=False))
        chunk, out = self.meta["chunk"], []
        for i, part in enumerate(self.parts()):
            sel = rows[(rows >= i * chunk) & (rows < (i + 1) * chunk)] - i * chunk
            out.append(np.asarray(part[sel]))
        return np.concatenate(out)


def vectors_key(corpus: Corpus, model_name: str, model) -> dict:
    """What decides a corpus encoding: the texts, the model's name and weights, how it reads them."""
    return {"corpus": corpus.fingerprint(), "model": model_name, "version": fingerprint(model_name),
            "max_seq_length": model.max_seq_length, "normalized": wants_normalized(model), **precision_key()}


def precision_key() -> dict:
    """``{"precision": "bf16"}`` while encoders run in bf16 (``precision.encoding``); nothing in fp32, so the keys
    of fp32 encodings and indexes are those they always were."""
    from ..precision import encoding_precision

    used = encoding_precision()
    return {} if used == "fp32" else {"precision": used}


def embeddings_folder(index_path, key: dict) -> str:
    """Where an index keeps its corpus encoding: beside the index folder, named by ``key`` (``vectors_key``), so every
    FAISS kind of one model shares one encoding and indexes of other models in the same folder never share it
    (two processes encoding different models there at once would otherwise mix their chunks).

    >>> embeddings_folder("/x/idx/flat", {"model": "m"})
    '/x/idx/embeddings-4e60c75753a4'
    """
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(os.path.dirname(os.path.abspath(index_path)), f"embeddings-{digest}")


def encode_corpus(model, corpus: Corpus, folder, key: dict, batch_size: int = 64, chunk: int = 8192,
                  progress: bool = True, rebuild: bool = False, workers: int = 1) -> Embeddings:
    """Encode ``corpus`` into ``folder`` (``part-NNNNN.npy``, float32): by this process, by ``workers`` worker
    processes, or by the ranks of a torchrun job (``encode_in_chunks``). Finished chunks are kept, so an interrupted
    run resumes; chunks of another ``key`` (see ``vectors_key``) or ``rebuild`` start it over."""
    folder = os.fspath(folder)
    meta = {**key, "documents": len(corpus), "chunk": chunk, "dim": model.get_embedding_dimension()}

    def path(i: int) -> str:
        return os.path.join(folder, f"part-{i:05d}.npy")

    def write(i, start, stop, pool, bar):
        vectors = encode_texts(model, corpus.texts(start=start, stop=stop), "document", batch_size, bar, pool)
        with atomic_path(path(i)) as tmp, open(tmp, "wb") as f:
            np.save(f, vectors)

    encode_in_chunks(model, folder, meta, len(corpus), chunk, lambda i: os.path.exists(path(i)), write,
                     workers=workers, progress=progress, rebuild=rebuild)
    return Embeddings(folder)
