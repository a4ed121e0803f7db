"""The training config (YAML): a dataclass whose every field is checked, type and range, before anything loads."""

from __future__ import annotations

import typing
from dataclasses import MISSING, dataclass, field, fields

from ..data.shards import parse_shard
from ..errors import SEED_RANGE, InputError, brief, choice, key_value, keyword_types, number, read_config, typed
from .examples import STRATEGIES, ExampleConfig
from .lora import check_lora

# option (of the config, examples, or a loss) -> its range; every int is at most INT_MAX, every float finite
RANGES = {"epochs": {"above": 0}, "max_steps": {"low": -1}, "batch_size": {"low": 1}, "learning_rate": {"above": 0},
          "warmup_ratio": {"low": 0, "below": 1}, "grad_accum": {"low": 1}, "dev_fraction": {"low": 0, "below": 1},
          "save_steps": {"low": 1}, "save_total_limit": {"low": 1}, "logging_steps": {"low": 1},
          "eval_steps": {"low": 1}, "max_seq_length": {"low": 1}, "mini_batch_size": {"low": 1},
          "negatives": {"low": 1}, "seed": SEED_RANGE,
          "remove_query": {"low": 0, "high": 1}, "merge_alpha": {"low": 0, "high": 1}, "k": {"low": 1},
          **{t: {"above": 0} for t in ("temperature", "student_temperature", "teacher_temperature",
                                        "infonce_temperature", "sigma")}}
INT_MAX = 2**31 - 1
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
ENUMS = {"precision": PRECISIONS, "strategy": STRATEGIES, "positives": ("labels", "teacher")}
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
    precision: str = "auto"          # auto or bf16: bf16 where native (precision.py), else fp32; or fp32 / fp16
    dev_fraction: float = 0.0        # hold out this share of the training queries (seeded) to evaluate on while training
    fold: str | None = None          # "i/k": leave out fold i of k of the queries (the crc32 split of --shard)
    eval_steps: int | None = None    # default: save_steps
    save_steps: int = 100
    save_total_limit: int = 2
    logging_steps: int = 10
    trust_remote_code: bool = False
    flops: dict | None = None        # splade: FLOPS regulariser weights {query: .., document: ..}
    gather_across_devices: bool = True  # under DDP, score each query against every process's documents
    mini_batch_size: int | None = None  # bi-encoder: cached losses (GradCache), this many texts embedded at a time
    lora: dict | None = None         # train a LoRA adapter, merged on save: {r, alpha, dropout, target_modules, ...}
    merge_alpha: float | None = None  # WiSE-FT: save (1 - a) * start + a * trained (models/merge.py)
    report_to: object = "none"       # tensorboard, wandb, mlflow or none; or a list of them
    run_name: str | None = None      # the run's name in the trackers (default: the output folder's name)
    embeddings: dict | None = None   # embedding distillation beside the score losses (embedding_distill.py)
    extra: dict = field(default_factory=dict)  # more TrainingArguments

    @classmethod
    def from_dict(cls, d) -> "TrainConfig":
        """Check every option (names, types, ranges, the student and the loss) and build the config."""
        from .losses import make_loss
        from .students import STUDENTS, get_student

        if not isinstance(d, dict):
            raise InputError(f"a training config is a mapping of options, not a {type(d).__name__}")
        _plain(d)
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
        if d.get("fold") is not None:
            try:
                parse_shard(d["fold"])
            except InputError:
                raise InputError(f"option fold must look like 0/4 (fold 0 of 4), not {brief(d['fold'])}") from None
        for key, value in (d.get("flops") or {}).items():
            choice(key, "option flops: a key", ("query", "document"))
            number(value, f"option flops.{key}", float, low=0)
        trackers(d.get("report_to", "none"))
        student = get_student(d.get("student", "bi-encoder"))
        if d.get("mini_batch_size") and not student.cached_losses:
            can = ", ".join(s.name for s in STUDENTS.values() if s.cached_losses)
            raise InputError(f"option mini_batch_size: cached losses (GradCache) train {can} students, not "
                             f"{student.name}")
        if d.get("extra"):
            known = {f.name for f in fields(student.arguments)}
            unknown = sorted(set(d["extra"]) - known)
            if unknown:
                raise InputError(f"option extra: {unknown[0]!r} is not one of the trainer's TrainingArguments")
        _check_loss(d.get("loss", "margin-mse"))
        try:
            loss = make_loss(d.get("loss", "margin-mse"))
        except (ValueError, TypeError, KeyError) as e:
            raise InputError(f"loss: {e}") from None
        if loss.reads_reference and not d["examples"].get("regularizer"):
            raise InputError("option loss: the regularizer loss needs examples: {regularizer: <teacher id>}")
        if d["examples"].get("strategy") == "sample":
            _check_sampled(loss, d["examples"].get("temperature", ExampleConfig.temperature))
        if d.get("lora") is not None:
            check_lora(d["lora"])
        if d.get("embeddings") is not None:
            from .embedding_distill import EmbeddingConfig

            if student.model_class != "SentenceTransformer":  # EmbedDistillLoss trains SentenceTransformers
                raise InputError(f"option embeddings: a {student.name} student has no single embedding to regress a "
                                 "teacher's (a bi-encoder does)")
            EmbeddingConfig.from_dict(d["embeddings"])
        return cls(**{**d, "examples": ExampleConfig(**d["examples"])})

    @classmethod
    def from_file(cls, path, overrides=()) -> "TrainConfig":
        """A YAML config; each override ``key=value`` (``examples.teacher=ID``; the value read as YAML) replaces an
        option first, and is named as ``--set key=value`` when it is wrong."""
        d = read_config(path)
        d = d if d is not None else {}
        for item in overrides:
            key, value = key_value(item, "--set")
            if not isinstance(d, dict):
                break  # from_dict says what the file holds instead
            *parents, last = key.split(".")
            node = d
            for p in parents:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise InputError(f"--set {item}: {p} is not a mapping")
            node[last] = value
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


def _check(name: str, value, tp) -> None:
    """The type, range (``RANGES``, by the last part of the name) or choices (``ENUMS``) of one option."""
    typed(value, tp, f"option {name}")
    last = name.rsplit(".", 1)[-1]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        kind = int if isinstance(value, int) else float
        number(value, f"option {name}", kind, **{**({"high": INT_MAX} if kind is int else {}), **RANGES.get(last, {})})
    if last in ENUMS:
        choice(value, f"option {name}", ENUMS[last])


def _check_loss(spec) -> None:
    """A loss is a name, ``{name: ..., options}`` or a list of the latter; the options of a known name have the
    types its constructor declares (``make_loss`` says which names are known)."""
    from .losses import LOSSES

    for part in spec if isinstance(spec, list) else [spec]:
        if not (isinstance(part, str) and part is spec or isinstance(part, dict) and isinstance(part.get("name"), str)):
            raise InputError(f"option loss: a loss is a name or {{name: <loss>, <options>}}, and a list holds the "
                             f"latter, not {brief(part)}")
        if isinstance(part, str) or part["name"] not in LOSSES:
            continue
        types = keyword_types(LOSSES[part["name"]].__init__)
        for key, value in part.items():
            if key == "weight":
                number(value, "option loss weight", float)
            elif key != "name":
                _check(f"loss.{key}", value, types.get(key, object))


def _check_sampled(loss, temperature: float) -> None:
    """Strategy ``sample`` takes the teacher's distribution at ``examples.temperature``, on min-max scaled scores; a
    listwise KL that names another one would be silently ignored."""
    for part in loss.terms():
        if part.reads_weights and (part.teacher_temperature != temperature or part.normalize != "minmax"):
            raise InputError(f"option loss: with examples: {{strategy: sample}} the teacher's distribution is the "
                             f"one the negatives are drawn from (examples.temperature {temperature:g}, min-max "
                             f"scaled): set the loss's teacher_temperature to {temperature:g} and normalize minmax")


def _plain(value, name: str = "") -> None:
    """Every mapping key of the config is text, every number finite (``null: 1``, ``learning_rate: .nan``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputError(f"option names are text, not {brief(k)}" + (f" (in {name})" if name else ""))
            _plain(v, f"{name}.{k}" if name else k)
    elif isinstance(value, list):
        for v in value:
            _plain(v, name)
    elif isinstance(value, float):
        number(value, f"option {name}", float)


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
