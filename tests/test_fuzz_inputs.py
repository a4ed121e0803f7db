"""Property-based fuzzing of what a command reads besides data files (issue 32): option values, training and teacher
YAML, index meta.json, torchrun's environment variables. Each either works or is an InputError on one line naming
the option, file or variable; never another exception, and nothing is written on failure.

Bounded for CI (about 30 s on 2 cores, no JVM, no model); ``IRDISTILL_FUZZ=deep`` runs 20x more examples."""

import contextlib
import io
import json
import math
import os
import re
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irdistill.cli import main
from irdistill.data.shards import parse_shard
from irdistill.errors import InputError
from irdistill.index.base import read_meta, saved_kind
from irdistill.queries.spec import MAX_PER_PASSAGE
from irdistill.teachers.spec import parse_spec
from irdistill.training import TrainConfig

settings.register_profile("inputs", max_examples=30, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("inputs-deep", max_examples=600, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile("inputs-deep" if os.environ.get("IRDISTILL_FUZZ") == "deep" else "inputs")

ODD = ["0", "-0", "1", "2", "-1", "nan", "NaN", "inf", "-inf", "1e3", "1.5", "", " ", " 7 ", "1_000", "0x10", "\u0663",
       "1e-400", "1e400", "4294967295", "4294967296", "2147483648", "0.05", "1.0", "9" * 40, "\x00", "--k"]
option_value = st.one_of(st.sampled_from(ODD), st.integers(-(10**20), 10**20).map(str),
                         st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=8))


# (a) option values ----------------------------------------------------------------------------------------------------
def accepts(text: str, kind, low=None, high=None, above=None, below=None) -> bool:
    """What a number option should take: a whole number (ASCII digits) or a finite float, within the bounds."""
    if kind is int:
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text, re.ASCII) or len(text.strip()) > 4000:
            return False
        value = int(text)
    else:
        try:
            value = float(text)
        except ValueError:
            return False
        if not math.isfinite(value):
            return False
    return ((low is None or value >= low) and (high is None or value <= high) and (above is None or value > above)
            and (below is None or value < below))


COUNT, SEED = {"kind": int, "low": 1}, {"kind": int, "low": 0, "high": 2**32 - 1}
# verb arguments that fail after the options are read (a missing input under {tmp}); option; what it takes
OPTIONS = [(["evaluate", "--dataset", "{tmp}/no", "--output", "{tmp}/out"], "--k", COUNT),
           (["evaluate", "--dataset", "{tmp}/no", "--output", "{tmp}/out"], "--batch-size", COUNT),
           (["index", "--dataset", "{tmp}/no", "--index", "{tmp}/out"], "--workers", COUNT),
           (["index", "--dataset", "{tmp}/no", "--index", "{tmp}/out"], "--shards", COUNT),
           (["candidates", "--dataset", "{tmp}/no", "--output", "{tmp}/out/run.trec"], "--k", COUNT),
           (["candidates", "--dataset", "{tmp}/no", "--output", "{tmp}/out/run.trec"], "--sample-queries", COUNT),
           (["search", "--index", "{tmp}/no", "--query", "x"], "--k", COUNT),
           (["score", "--teacher", "bm25", "--run", "{tmp}/no.trec", "--dataset", "{tmp}/no", "--cache", "{tmp}/out"],
            "--flush", COUNT),
           (["cache", "export-margin-mse", "--cache", "{tmp}/no", "--teacher", "t", "--output", "{tmp}/out.tsv",
             "--dataset", "x"], "--max-negatives", COUNT),
           (["generate-queries", "--dataset", "{tmp}/no", "--generator", "title", "--output", "{tmp}/out"],
            "--per-passage", {**COUNT, "high": MAX_PER_PASSAGE}),
           (["generate-queries", "--dataset", "{tmp}/no", "--generator", "title", "--output", "{tmp}/out"], "--sample",
            COUNT),
           (["generate-queries", "--dataset", "{tmp}/no", "--generator", "title", "--output", "{tmp}/out"], "--seed",
            SEED),
           (["adapt", "--dataset", "{tmp}/no", "--output", "{tmp}/out"], "--depth", COUNT),
           (["adapt", "--dataset", "{tmp}/no", "--output", "{tmp}/out"], "--seed", SEED),
           (["train", "--config", "{tmp}/no.yaml"], "--crossfit", {"kind": int, "low": 2}),
           (["merge", "--base", "{tmp}/no", "--model", "{tmp}/no2", "--output", "{tmp}/out"], "--alpha",
            {"kind": float, "low": 0, "high": 1}),
           (["compare", "{tmp}/no.trec", "--qrels", "{tmp}/no.tsv"], "--max-p", {"kind": float, "above": 0, "below": 1})]


def run_main(argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


@pytest.mark.parametrize("args,option,takes", OPTIONS, ids=[f"{a[0]} {o}" for a, o, _ in OPTIONS])
def test_option_values(args, option, takes):
    @settings(PROFILE)
    @given(option_value)
    def check(value):
        with tempfile.TemporaryDirectory() as tmp:
            code, err = run_main([a.format(tmp=tmp) for a in args] + [f"{option}={value}"])
            assert code == 2 and len(err.splitlines()) == 1 and err.startswith("irdistill: error: "), err
            named = f"{option} " in err or f"{option}/" in err or f"/{option} " in err
            assert named != accepts(value, **takes), err  # a bad value is named; a good one fails on the input
            assert os.listdir(tmp) == [], err

    check()


# (b) training YAML ----------------------------------------------------------------------------------------------------
CONFIG = {"output": "out", "dataset": "data", "cache": "cache", "examples": {"teacher": "t", "negatives": 3},
          "loss": [{"name": "infonce"}, {"name": "listwise-kl", "teacher_temperature": 0.3}], "epochs": 1,
          "learning_rate": 2e-5, "lora": {"r": 4}, "flops": {"query": 1e-4}, "report_to": "none", "fold": "0/2"}
CONFIG_NAMES = [(n,) for n in TrainConfig.__dataclass_fields__] + [("examples", n) for n in (
    "strategy", "positives", "seed", "temperature", "fn_margin", "remove_query", "regularizer")]
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=6),
                   st.sampled_from(["infonce", "bi-encoder", "fp16", "top", "teacher", "0/2", "none", "t", "bm25",
                                    "ensemble", "zscore", "cross-encoder", "llm-pointwise", "listwise-kl"]))
key = st.one_of(st.sampled_from(["name", "kind", "model", "weight", "r", "alpha", "query", "teacher", "cached"]),
                st.text(max_size=4), st.integers(-3, 3), st.none(), st.booleans(), st.floats())
yaml_value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(key, inner, max_size=3),
                          max_leaves=8)


def paths(value, prefix=()) -> list[tuple]:
    """Where ``value`` holds something: every key and list position, at any depth."""
    out = [prefix] if prefix else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        out += paths(v, prefix + (k,))
    return out


def mutated(base: dict, names: list[tuple]):
    """``base`` with up to three of its values (or options it could have, ``names``) replaced by any YAML value, or
    removed."""
    where = st.one_of(st.sampled_from(paths(base) + names), key.map(lambda k: (k,)))
    edit = st.tuples(where, st.one_of(yaml_value, st.just(KeyError)))
    return st.lists(edit, max_size=3).map(lambda edits: _apply(base, edits))


def _apply(base: dict, edits) -> dict:
    doc = json.loads(json.dumps(base))
    for path, value in edits:
        node = doc
        for p in path[:-1]:
            node = node[p] if isinstance(node, (dict, list)) and _has(node, p) else None
        if not isinstance(node, (dict, list)) or isinstance(node, list) and not _has(node, path[-1]):
            continue  # an earlier edit replaced the way there
        if value is KeyError:
            node.pop(path[-1], None) if isinstance(node, dict) else node.pop(path[-1])
        else:
            node[path[-1]] = value
    return doc


def _has(node, key) -> bool:
    return key in node if isinstance(node, dict) else isinstance(key, int) and 0 <= key < len(node)


def yaml_document(base: dict, names: list[tuple]):
    return st.one_of(mutated(base, names).map(_dump), mutated(base, names).map(_dump), yaml_value.map(_dump),
                     st.text(max_size=40))


def _dump(doc) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def check_file(name: str, text: str, load, after=None):
    """Write ``text`` to a fresh file and load it: success (then ``after(result)``), or a one-line InputError naming
    a file or --option."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        try:
            out = load(path)
            if after:
                after(out)
        except InputError as e:
            assert "\n" not in str(e), str(e)
            assert str(e).startswith(path) or e.path is not None or str(e).startswith("--option"), str(e)


def finite(value) -> bool:
    """Every number in ``value`` (nested dicts and lists) is finite, every key text."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and finite(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(finite, value))
    return not isinstance(value, float) or math.isfinite(value)


@settings(PROFILE, max_examples=PROFILE.max_examples * 2)
@given(yaml_document(CONFIG, CONFIG_NAMES))
def test_training_yaml(text):
    from dataclasses import asdict

    def sane(cfg):
        d = asdict(cfg)
        assert finite(d) and d["learning_rate"] > 0 and d["epochs"] > 0 and d["batch_size"] >= 1, d

    check_file("train.yaml", text, TrainConfig.from_file, sane)


# (c) teacher YAML ----------------------------------------------------------------------------------------------------
TEACHER = {"kind": "ensemble", "members": ["bm25", {"kind": "cross-encoder", "model": "m", "batch_size": 8},
                                           {"cached": "t"}, {"kind": "llm-pointwise", "model": "m", "labels": ["y", "n"]}],
           "weights": [0.2, 0.3, 0.4, 0.1], "norm": "zscore", "fit": {"split": "train", "run": "r.trec"}}
BM25 = {"kind": "bm25", "k1": 0.9, "b": 0.4, "depth": 100}
TEACHER_NAMES = [(n,) for n in ("kind", "model", "k1", "b", "depth", "batch_size", "labels", "members", "weights", "fit",
                                "norm", "text_view", "endpoint", "top_logprobs")]
teacher_option = st.one_of(st.text(max_size=10), st.tuples(st.sampled_from(["k1", "b", "depth", "model", "norm",
                                                                               "weights", "members", "x-y", ""]),
                                                           option_value).map("=".join))


@settings(PROFILE, max_examples=PROFILE.max_examples * 2)
@given(st.one_of(yaml_document(TEACHER, TEACHER_NAMES), yaml_document(BM25, TEACHER_NAMES)),
       st.lists(teacher_option, max_size=2))
def test_teacher_yaml(text, options):
    def sane(spec):
        assert finite(spec) and isinstance(spec["kind"], str), spec
        if spec["kind"] == "ensemble" and spec.get("weights") is not None:
            assert len(spec["weights"]) == len(spec["members"]) >= 2, spec

    check_file("teacher.yaml", text, lambda path: parse_spec(path, options), sane)


# (d) index meta.json -------------------------------------------------------------------------------------------------
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) |
                          st.sampled_from(["bm25", "dense", "splade", "colbert", "kind", "model"]),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                              st.sampled_from(["kind", "model", "key", "documents"]) | st.text(max_size=4), inner,
                              max_size=3), max_leaves=6)
meta_bytes = st.one_of(json_value.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40),
                       st.sampled_from([b"\xff\xfe", b"[" * 5000, b"1" * 5000, b'{"kind": "bm25"}']))


@settings(PROFILE)
@given(meta_bytes)
def test_index_meta_json(data):
    with tempfile.TemporaryDirectory() as tmp:
        meta = os.path.join(tmp, "meta.json")
        with open(meta, "wb") as f:
            f.write(data)
        for load in (saved_kind, lambda p: read_meta(p, "bm25")):
            try:
                load(tmp)
            except InputError as e:
                assert str(e).startswith(tmp) and "\n" not in str(e), str(e)


# (e) RANK, WORLD_SIZE, LOCAL_RANK -----------------------------------------------------------------------------------
env_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6)
env_value = st.one_of(st.none(), st.integers(-3, 5).map(str), st.sampled_from(ODD[:-2]), env_text)
VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@settings(PROFILE)
@given(st.tuples(env_value, env_value, env_value))
def test_torchrun_environment(values):
    saved = {v: os.environ.get(v) for v in VARIABLES}
    try:
        for var, value in zip(VARIABLES, values):
            os.environ.pop(var, None) if value is None else os.environ.__setitem__(var, value)
        ints = [int(v) if v is not None and accepts(v, int) else None for v in values]
        rank, world, local = [d if v is None else i for v, i, d in zip(values, ints, (0, 1, 0))]
        ok = None not in (rank, world, local) and 0 <= rank < world and local >= 0
        try:
            assert parse_shard(None) == (rank, world) and ok
        except InputError as e:
            assert not ok and str(e).startswith("environment variable ") and "\n" not in str(e), str(e)
            assert any(var in str(e) for var in VARIABLES)
    finally:
        for var, value in saved.items():
            os.environ.pop(var, None) if value is None else os.environ.__setitem__(var, value)
