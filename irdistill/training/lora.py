"""LoRA adapters (Hu et al., 2022, "LoRA: Low-Rank Adaptation of Large Language Models") on any student, through
PEFT, merged into the weights before saving, so the saved model is a plain sentence-transformers model.

``lora: {r: 8, alpha: 16, dropout: 0.1, target_modules: [query, value]}`` in a training config: the low-rank
matrices are injected into the student's transformers model (``model.transformers_model``; PEFT's defaults choose
the target modules when none are given) and only they train, with the modules outside the transformers model (a
ColBERT projection, for instance) and any ``modules_to_save`` (e.g. ``[classifier]`` for a cross-encoder's head).
This is what sentence-transformers' ``model.add_adapter`` does, called on PEFT directly: the installed transformers
asks for a newer PEFT than PyPI has for its own ``add_adapter``.
"""

from __future__ import annotations

import os

from ..errors import InputError

OPTIONS = {"r": int, "alpha": (int, float), "dropout": (int, float), "target_modules": list, "modules_to_save": list}


def check_lora(spec: dict) -> None:
    """Names, types and ranges of a ``lora`` config entry (before anything loads)."""
    unknown = set(spec) - set(OPTIONS)
    if unknown:
        raise InputError(f"unknown lora option(s): {', '.join(sorted(unknown))} (choose from {', '.join(OPTIONS)})")
    for name, value in spec.items():
        if isinstance(value, bool) or not isinstance(value, OPTIONS[name]):
            raise InputError(f"option lora.{name} must be {getattr(OPTIONS[name], '__name__', 'a number')}, not {value!r}")
    if spec.get("r", 8) < 1 or spec.get("alpha", 1) <= 0 or not 0 <= spec.get("dropout", 0) < 1:
        raise InputError(f"option lora needs r >= 1, alpha > 0 and 0 <= dropout < 1, not {spec}")


def add_lora(model, spec: dict):
    """Inject a LoRA adapter into ``model``'s transformers model; only adapter weights (and modules outside the
    transformers model, and ``modules_to_save``) stay trainable. Returns the model."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise InputError("lora needs the peft package (pip install peft)") from None
    inner = model.transformers_model
    if inner is None:
        raise InputError("lora needs a student built on a transformers model")
    config = LoraConfig(r=spec.get("r", 8), lora_alpha=spec.get("alpha", 16), lora_dropout=spec.get("dropout", 0.0),
                        target_modules=spec.get("target_modules"), modules_to_save=spec.get("modules_to_save"))
    try:
        inject_adapter_in_model(config, inner)
    except ValueError as e:  # e.g. target modules not found in the model
        raise InputError(f"lora: {e}".splitlines()[0]) from None
    return model


def merge_lora(model):
    """Fold every LoRA adapter into its base layer (W + B A * alpha / r) and put the base layers back, so the state
    dict has the original keys and loads without PEFT. Returns the model."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import ModulesToSaveWrapper

    inner = model.transformers_model
    layers = [(name, m) for name, m in inner.named_modules() if isinstance(m, (BaseTunerLayer, ModulesToSaveWrapper))]
    for name, layer in layers:
        parent = inner.get_submodule(name.rpartition(".")[0]) if "." in name else inner
        if isinstance(layer, ModulesToSaveWrapper):  # the trained copy replaces the original
            replacement = layer.modules_to_save[layer.active_adapters[0]]
        else:
            layer.merge()
            replacement = layer.get_base_layer()
        setattr(parent, name.rpartition(".")[2], replacement)
    if hasattr(inner, "peft_config"):
        del inner.peft_config
    for p in model.parameters():
        p.requires_grad_(True)
    return model


ADAPTER_FILE = "lora-trainable.pt"  # in each checkpoint: the trainable weights, adapters included, for resuming


def trainable_state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}


def checkpoint_callback(model):
    """A trainer callback that writes ``ADAPTER_FILE`` into each checkpoint (the trainer's own model files cannot
    be read back into a model with adapters), for ``load_checkpoint``."""
    import torch
    from transformers import TrainerCallback

    from ..data.io import atomic_path

    class LoraCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
                with atomic_path(os.path.join(folder, ADAPTER_FILE)) as tmp:
                    torch.save(trainable_state(model), tmp)

    return LoraCheckpoints()


def load_checkpoint(model, folder: str) -> None:
    """Put a checkpoint's trainable weights (``ADAPTER_FILE``) back into ``model`` (which has the same adapters)."""
    import torch

    state = torch.load(os.path.join(folder, ADAPTER_FILE), map_location="cpu")
    missing = set(trainable_state(model)) - set(state)
    if missing:
        raise InputError(f"the checkpoint's adapter does not fit this config ({len(missing)} weights missing, e.g. "
                         f"{sorted(missing)[0]})", folder)
    model.load_state_dict(state, strict=False)
