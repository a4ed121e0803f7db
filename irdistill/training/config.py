"""The training config (YAML): a dataclass whose every field is checked, type and range, before anything loads."""

from __future__ import annotations

import os
import types
import typing
from dataclasses import MISSING, dataclass, field, fields

from ..errors import InputError
from ..models.merge import check_alpha
from .examples import ExampleConfig
from .lora import check_lora

# field -> (lowest allowed, whether the lowest is allowed itself); fields not listed take any value of their type
RANGES = {"epochs": (0, False), "max_steps": (-1, True), "batch_size": (1, True), "learning_rate": (0, False),
          "warmup_ratio": (0, True), "grad_accum": (1, True), "dev_fraction": (0, True), "save_steps": (1, True),
          "save_total_limit": (1, True), "logging_steps": (1, True), "eval_steps": (1, True),
          "max_seq_length": (1, True), "negatives": (1, True), "temperature": (0, False), "remove_query": (0, True)}
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# report_to -> the module the Hugging Face trainer's integration needs
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


@dataclass
class TrainConfig:
    output: str
    dataset: str
    cache: str
    examples: ExampleConfig
    student: str = "bi-encoder"
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    split: str = "train"
    loss: object = "margin-mse"
    max_seq_length: int | None = 128
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    seed: int = 42
    precision: str = "auto"          # auto: bf16 on a GPU that has it, else fp32; or fp32 / fp16 / bf16
    dev_fraction: float = 0.0        # hold out this share of the training queries (seeded) to evaluate on while training
    fold: str | None = None          # "i/k": leave out fold i of k of the queries (the crc32 split of --shard)
    eval_steps: int | None = None    # default: save_steps
    save_steps: int = 100
    save_total_limit: int = 2
    logging_steps: int = 10
    trust_remote_code: bool = False
    flops: dict | None = None        # splade: FLOPS regulariser weights {query: .., document: ..}
    gather_across_devices: bool = True  # under DDP, score each query against every process's documents
    lora: dict | None = None         # train a LoRA adapter, merged on save: {r, alpha, dropout, target_modules, ...}
    merge_alpha: float | None = None  # WiSE-FT: save (1 - a) * start + a * trained (models/merge.py)
    report_to: object = "none"       # tensorboard, wandb, mlflow or none; or a list of them
    run_name: str | None = None      # the run's name in the trackers (default: the output folder's name)
    extra: dict = field(default_factory=dict)  # more TrainingArguments

    @classmethod
    def from_dict(cls, d) -> "TrainConfig":
        """Check every option (names, types, ranges, the student and the loss) and build the config."""
        from .losses import make_loss
        from .students import get_student

        if not isinstance(d, dict):
            raise InputError(f"a training config is a mapping of options, not a {type(d).__name__}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        if not isinstance(d.get("examples"), dict) or "teacher" not in d["examples"]:
            raise InputError("the config needs examples: {teacher: <teacher id from `irdistill cache list`>, ...}")
        missing = [f.name for f in fields(cls) if f.name not in d and f.name != "examples"
                   and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise InputError(f"the config needs option(s): {', '.join(missing)}")
        unknown = set(d["examples"]) - set(ExampleConfig.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown examples option(s): {', '.join(sorted(unknown))}")
        for name, value in d.items():
            if name != "examples":
                _check(name, value, _type(cls, name))
        for name, value in d["examples"].items():
            _check(f"examples.{name}", value, _type(ExampleConfig, name))
        if d.get("precision", "auto") not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {d['precision']!r}")
        trackers(d.get("report_to", "none"))
        get_student(d.get("student", "bi-encoder"))
        try:
            loss = make_loss(d.get("loss", "margin-mse"))
        except (ValueError, TypeError, KeyError) as e:
            raise InputError(f"loss: {e}") from None
        if loss.reads_reference and not d["examples"].get("regularizer"):
            raise InputError("option loss: the regularizer loss needs examples: {regularizer: <teacher id>}")
        if d.get("lora") is not None:
            check_lora(d["lora"])
        if d.get("merge_alpha") is not None:
            try:
                check_alpha(d["merge_alpha"])
            except InputError as e:
                raise InputError(f"option merge_alpha: {e.message}") from None
        return cls(**{**d, "examples": ExampleConfig(**d["examples"])})

    @classmethod
    def from_file(cls, path, overrides=()) -> "TrainConfig":
        """A YAML config; each override ``key=value`` (``examples.teacher=ID``; the value read as YAML) replaces an
        option first, and is named as ``--set key=value`` when it is wrong."""
        import yaml

        if not os.path.isfile(path):
            raise InputError("no such file" if not os.path.exists(path) else "not a file", path)
        with open(path, encoding="utf-8") as f:
            try:
                d = yaml.safe_load(f)
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                raise InputError(f"malformed YAML ({getattr(e, 'problem', e)})", path, mark.line + 1 if mark else None) from None
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text", path) from None
        d = d if d is not None else {}
        for item in overrides:
            key, eq, value = item.partition("=")
            if not eq or not key or not isinstance(d, dict):
                raise InputError(f"--set takes key=value, not {item!r}")
            *parents, last = key.split(".")
            node = d
            for p in parents:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise InputError(f"--set {item}: {p} is not a mapping")
            node[last] = yaml.safe_load(value)
        try:
            return cls.from_dict(d)
        except InputError as e:
            named = [o for o in overrides if o.partition("=")[0].split(".")[-1] in e.message]
            if named:
                raise InputError(f"--set {named[0]}: {e.message}") from None
            raise InputError(e.message, path, _line(path, e.message)) from None


def trackers(report_to) -> list[str]:
    """The trackers ``report_to`` names (``"none"``: no tracker), each checked to be known and installed."""
    import importlib.util

    names = [report_to] if isinstance(report_to, str) else report_to
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(f"option report_to must be a tracker name or a list of them, not {report_to!r}")
    if names == ["none"] or not names:
        return []
    for name in names:
        if name == "none":
            raise InputError("option report_to: none cannot be listed with trackers")
        if name not in TRACKERS:
            raise InputError(f"option report_to: unknown tracker {name!r} (choose from {', '.join(TRACKERS)} or none)")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise InputError(f"option report_to: {name} is not installed (pip install {TRACKERS[name]}, or the "
                             f"irdistill[tracking] extra)")
    return list(dict.fromkeys(names))


def _type(cls, name: str):
    hints = typing.get_type_hints(cls)
    return hints[name]


def _allowed(tp) -> tuple:
    """The Python types a field's annotation admits (``float`` admits ints; ``object`` anything)."""
    if tp is object:
        return (object,)
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    out = []
    for a in args:
        out += [int, float] if a is float else [type(None)] if a is type(None) else [typing.get_origin(a) or a]
    return tuple(out)


def _check(name: str, value, tp) -> None:
    allowed = _allowed(tp)
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        names = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in allowed}))
        raise InputError(f"option {name} must be {names}, not {value!r}")
    low = RANGES.get(name.rsplit(".", 1)[-1])
    if low and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < low[0] or (value == low[0] and not low[1]):
            raise InputError(f"option {name} must be {'at least' if low[1] else 'above'} {low[0]}, not {value!r}")
    if name == "dev_fraction" and value >= 1:
        raise InputError(f"option dev_fraction must be below 1, not {value!r}")
    if name == "examples.remove_query" and value > 1:
        raise InputError(f"option {name} is a probability, at most 1, not {value!r}")


def _line(path, message: str) -> int | None:
    """The line of the option an error names (``option batch_size ...`` -> the line that sets batch_size)."""
    import re

    m = re.search(r"option[s()]*:? ([\w.]+)", message)
    if not m:
        return None
    key = m.group(1).split(".")[-1]
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if re.match(rf"\s*{re.escape(key)}\s*:", line) or re.search(rf"[{{,]\s*{re.escape(key)}\s*:", line):
                return n
    return None
