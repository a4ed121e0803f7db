"""Encode a corpus with a sentence-transformers model into resumable chunks of float32 vectors on disk."""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from ..progress import bar as progress_bar
from ..data.corpus import Corpus
from ..data.io import atomic_path
from ..models import fingerprint


def wants_normalized(model) -> bool:
    """Cosine models are searched by inner product over unit vectors."""
    return getattr(model, "similarity_fn_name", "cosine") == "cosine"


def encode_texts(model, texts: list[str], role: str = "document", batch_size: int = 64, bar=None) -> np.ndarray:
    """Encode in length-sorted batches (short with short: less padding), in the input order, updating ``bar``.

    ``role`` is ``query`` or ``document``: the model's own query/document prompts apply (``encode_query``)."""
    encode = model.encode_query if role == "query" else model.encode_document
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    step = batch_size * 4
    for i in range(0, len(texts), step):
        idx = order[i : i + step]
        out[idx] = encode([texts[j] for j in idx], batch_size=batch_size, convert_to_numpy=True,
                          normalize_embeddings=wants_normalized(model), show_progress_bar=False)
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
            "max_seq_length": model.max_seq_length, "normalized": wants_normalized(model)}


def encode_corpus(model, corpus: Corpus, folder, key: dict, batch_size: int = 64, chunk: int = 8192,
                  progress: bool = True, rebuild: bool = False) -> Embeddings:
    """Encode ``corpus`` into ``folder``. Finished chunks are kept, so an interrupted run resumes where it stopped;
    chunks of another ``key`` (see ``vectors_key``) or ``rebuild`` start it over."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    meta = {**key, "documents": len(corpus), "chunk": chunk, "dim": model.get_embedding_dimension()}
    meta_path = os.path.join(folder, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            if rebuild or json.load(f) != json.loads(json.dumps(meta)):  # another model or corpus: start over
                for p in glob.glob(os.path.join(folder, "part-*.npy")):
                    os.remove(p)
    with atomic_path(meta_path) as tmp, open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    with progress_bar(total=len(corpus), desc="encoding", unit="doc", show=progress) as bar:
        for i, start in enumerate(range(0, len(corpus), chunk)):
            stop = min(start + chunk, len(corpus))
            path = os.path.join(folder, f"part-{i:05d}.npy")
            if os.path.exists(path):
                bar.update(stop - start)
                continue
            vectors = encode_texts(model, corpus.texts(start=start, stop=stop), "document", batch_size, bar)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, vectors)
    return Embeddings(folder)
