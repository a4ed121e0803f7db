"""ColBERT students and indexes: any BERT-like checkpoint as a sentence-transformers MultiVectorEncoder."""

from __future__ import annotations

from .hub import loading, locate, model_type

# ColBERT markers: PyLate's and Stanford ColBERT's choice, unused BERT vocabulary entries (no new embeddings)
COLBERT_PROMPTS = {"query": "[unused0] ", "document": "[unused1] "}
PROJECTION_SEED = 0


def load_colbert(name: str, device: str | None = None, dim: int = 128, query_length: int = 32,
                 document_length: int = 180):
    """A ColBERT model: a saved MultiVectorEncoder as it is; any other checkpoint (a SentenceTransformer such as
    all-MiniLM-L6-v2, or a bare BERT-like model) becomes one through sentence-transformers' own conversion, with
    a fresh linear projection to ``dim`` (initialised from a fixed seed, so every load of the same checkpoint
    converts to the same model: an index built in one process is searched with the same projection in another),
    the query/document markers, query augmentation (queries padded with
    [MASK] to ``query_length`` tokens; the masks are scored, not attended to) and a punctuation skiplist on the
    document side, all saved in the model's config."""
    import math
    import string

    import torch
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
    from torch import nn

    path = locate(name)
    with loading(name):
        if model_type(path) == "MultiVectorEncoder":
            return MultiVectorEncoder(path, device=device)
        model = MultiVectorEncoder(path, device=device)  # drops pooling, adds Dense(hidden, 128), mask, token Normalize
    modules = model._modules
    keys = list(modules)
    transformer, tokenizer = modules[keys[0]], model.tokenizer
    dense = next(k for k in keys if isinstance(modules[k], Dense))
    if dim != 128:
        modules[dense] = Dense(transformer.get_embedding_dimension(), dim, bias=False,
                               activation_function=nn.Identity(), module_input_name="token_embeddings")
    seeded = torch.Generator().manual_seed(PROJECTION_SEED)
    with torch.no_grad():
        for param in modules[dense].parameters():  # nn.Linear's own initialisation, from the fixed seed
            bound = 1 / math.sqrt(param.shape[-1]) if param.dim() > 1 else 1 / math.sqrt(transformer.get_embedding_dimension())
            param.copy_(torch.empty(param.shape).uniform_(-bound, bound, generator=seeded))
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
