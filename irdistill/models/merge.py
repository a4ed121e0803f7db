"""Weight interpolation and averaging of models of one architecture: WiSE-FT (Wortsman et al., 2022, "Robust
fine-tuning of zero-shot models") and uniform model soups (Wortsman et al., 2022, "Model soups").

    merged = (1 - alpha) * base + alpha * mean_i(model_i)

over every floating-point tensor of the state dicts (integer buffers, such as position ids, are the first model's).
With one model this is WiSE-FT between a starting point and its fine-tuned model; with several and ``alpha = 1``, a
uniform soup. Any sentence-transformers class works (SentenceTransformer, CrossEncoder, MultiVectorEncoder,
SparseEncoder): the models load with the first model's class and must have the same state-dict keys and shapes.
"""

from __future__ import annotations

import json
import os
import shutil

from ..errors import InputError
from .hub import fingerprint, loading, locate, model_type

WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise InputError(f"alpha must be a number from 0 to 1, not {alpha!r}")
    return float(alpha)


def state_mismatch(a: dict, b: dict) -> str | None:
    """Why two state dicts cannot be interpolated (the first difference, in words), or None."""
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        first = f"{only_a[0]!r} only in the first" if only_a else f"{only_b[0]!r} only in the second"
        return f"different parameters ({len(only_a) + len(only_b)} not shared, e.g. {first})"
    for k in a:
        if a[k].shape != b[k].shape:
            return f"{k!r} has shape {tuple(a[k].shape)} in one and {tuple(b[k].shape)} in the other"
    return None


def interpolate(base: dict, models: list[dict], alpha: float) -> dict:
    """``(1 - alpha) * base + alpha * mean(models)`` per floating-point tensor (computed in float32, returned in the
    first model's dtype); other tensors are the first model's. The state dicts must match (``state_mismatch``)."""
    import torch

    out = {}
    for k, v in models[0].items():
        if not torch.is_floating_point(v):
            out[k] = v.clone()
            continue
        soup = sum(m[k].float() for m in models) / len(models)
        out[k] = torch.lerp(base[k].float(), soup, alpha).to(v.dtype) if alpha < 1 else soup.to(v.dtype)
    return out


def fresh_parameters(model) -> set[str]:
    """The names (as in ``model.state_dict()``) of the parameters that loading did not read from the checkpoint but
    initialised at random, such as a cross-encoder's new head on a bi-encoder's weights. Transformers marks every tensor
    it loads (``_is_hf_initialized``); parameters of modules that are not transformers models count as loaded."""
    from transformers import PreTrainedModel

    fresh = set()
    for prefix, module in model.named_modules():
        if isinstance(module, PreTrainedModel):
            for name, p in module.named_parameters():
                if not getattr(p, "_is_hf_initialized", False):
                    fresh.add(f"{prefix}.{name}" if prefix else name)
    return fresh


def interpolate_model(model, base_state: dict, alpha: float, keep: set[str] = frozenset()):
    """Move ``model``'s weights to ``(1 - alpha) * base_state + alpha * model`` in place (WiSE-FT after training),
    except the parameters named in ``keep`` (``fresh_parameters`` at the start), which stay as trained: halfway back
    to a random initialisation is no model to keep."""
    state = model.state_dict()
    problem = state_mismatch(base_state, state)
    if problem:
        raise InputError(f"cannot interpolate with the starting model: {problem}")
    merged = interpolate(base_state, [state], alpha)
    model.load_state_dict({k: state[k] if k in keep else v for k, v in merged.items()})
    return model


def _model_class(path: str, kind: str | None):
    import sentence_transformers

    return getattr(sentence_transformers, kind or "SentenceTransformer")


def merge_models(base: str, models: list[str], alpha: float, output: str) -> str:
    """Write ``(1 - alpha) * base + alpha * mean(models)`` to ``output`` (atomically) and return it. The result is a
    copy of the first model (its tokenizer, configs and modules) with the merged weights, plus ``merge.json`` naming
    the inputs; it loads in sentence-transformers unchanged. Inputs are checked before any model loads."""
    import torch

    from ..data.io import atomic_dir

    alpha = check_alpha(alpha)
    if not models:
        raise InputError("merge needs at least one --model")
    paths = [locate(m) for m in models]
    base_path = locate(base)
    kinds = {name: model_type(p) if os.path.isdir(p) else None for name, p in zip([*models, base], [*paths, base_path])}
    kind = kinds[models[0]]
    for name, k in kinds.items():
        if k is not None and kind is not None and k != kind:
            raise InputError(f"cannot merge a {k} with a {kind} ({models[0]})", name)
    if os.path.abspath(output) in {os.path.abspath(p) for p in [*paths, base_path]}:
        raise InputError("the output folder is one of the inputs", output)
    cls = _model_class(paths[0], kind)
    with torch.no_grad():
        with loading(models[0]):
            target = cls(paths[0], device="cpu")
        first = target.state_dict()
        states = [first]
        for name, path in zip([*models[1:], base], [*paths[1:], base_path]):
            with loading(name):
                state = cls(path, device="cpu").state_dict()
            problem = state_mismatch(first, state)
            if problem:
                raise InputError(f"not the architecture of {models[0]}: {problem}", name)
            states.append(state)
        target.load_state_dict(interpolate(states[-1], states[:-1], alpha))
    with atomic_dir(output) as tmp:
        target.save(tmp)
        _copy_other_files(paths[0], tmp)
        with open(os.path.join(tmp, "merge.json"), "w") as f:
            json.dump({"method": "wise-ft" if len(models) == 1 else "soup", "alpha": alpha,
                       "base": {"model": base, "version": fingerprint(base)},
                       "models": [{"model": m, "version": fingerprint(m)} for m in models]}, f, indent=1)
    return output


def _copy_other_files(source: str, dest: str) -> None:
    """The first model's files that saving did not write (e.g. irdistill.json), weights excepted."""
    if not os.path.isdir(source):
        return
    for root, _, names in os.walk(source):
        for n in names:
            src = os.path.join(root, n)
            rel = os.path.relpath(src, source)
            if n.endswith(WEIGHT_FILES) or n.startswith(".") or os.path.exists(os.path.join(dest, rel)):
                continue
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))
