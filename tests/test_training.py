"""Training from cached teacher scores with tiny students (built from a config): examples, students, resume."""

import os

import numpy as np
import pytest
import torch

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset, run_from_dict
from irdistill.errors import InputError
from irdistill.teachers import build_teacher, score_run
from irdistill.training import ExampleConfig, TrainConfig, as_hf_dataset, build_examples, train
from test_cache import Overlap


@pytest.fixture
def cached(tmp_path):
    """A toy collection whose every query has all documents scored by the word-overlap teacher."""
    from conftest import write_beir

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    docs = {f"d{i}": ("", " ".join(rng.choice(words, 12))) for i in range(40)}
    queries = {f"q{i}": " ".join(rng.choice(words, 3)) for i in range(24)}
    qrels = {"train": [(q, f"d{i}", 1) for i, q in enumerate(queries)], "test": [("q0", "d0", 1)]}
    folder = write_beir(tmp_path / "data", docs, queries, qrels)
    ds = load_dataset(folder, "train")
    run = run_from_dict({q: {d: 0.0 for d in docs} for q in ds.queries})
    key = score_run(Overlap(), run, ds, ScoreCache(tmp_path / "cache"), progress=False).key
    return folder, ds, str(tmp_path / "cache"), key


def test_examples_sampling_and_false_negative_filter(cached):
    folder, ds, cache, tid = cached
    ex = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=3, strategy="top"))
    assert len(ex) == 24 and all(len(e["document_ids"]) == 4 for e in ex)
    e = ex[0]
    assert e["document_ids"][0] in ds.qrels[e["query_id"]]  # the judged positive comes first
    assert e["scores"][1:] == sorted(e["scores"][1:], reverse=True)  # top: the teacher's highest negatives
    filtered = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=3, fn_margin=0.0))
    for f in filtered:  # no negative scores as high as its positive
        assert max(f["scores"][1:]) < f["scores"][0]
    a = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=3, strategy="random", seed=1))
    b = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=3, strategy="random", seed=1))
    assert a == b
    t = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=3, strategy="teacher"))
    assert len(t) == 24
    with pytest.raises(InputError, match="sampling strategy"):
        build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, strategy="best"))


def test_texts_are_joined_at_batch_time(cached):
    folder, ds, cache, tid = cached
    ex = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=2))
    hf = as_hf_dataset(ex, ds)
    assert set(hf.column_names) == {"query_id", "document_ids", "scores"}  # stored: ids and scores
    row = hf[0]
    assert list(row) == ["query", "document_1", "document_2", "document_3", "scores"]
    assert row["query"] == ds.queries[ex[0]["query_id"]]
    assert row["document_1"] == ds.corpus.texts([ex[0]["document_ids"][0]])[0]


def test_remove_query_cuts_a_copied_query_out_of_its_documents(tmp_path):
    """The inverse cloze task's remedy: a query copied from a document is cut out of it, about as often as asked,
    the same pairs in every epoch; a query that is not copied leaves the texts alone."""
    from conftest import write_beir

    sentence = "the wing stalls early in a slipstream"
    docs = {f"d{i}": ("", f"intro {i} . {sentence} . more words {i}") for i in range(200)}
    queries = {"copied": sentence, "asked": "why do wings stall"}
    folder = write_beir(tmp_path / "data", docs, queries, {"train": [("copied", "d0", 1), ("asked", "d0", 1)]})
    ds = load_dataset(folder, "train")
    ex = [{"query_id": q, "document_ids": [f"d{i}" for i in range(200)], "scores": [0.0] * 200} for q in queries]
    hf = as_hf_dataset(ex, ds, remove_query=0.9, seed=3)
    texts = lambda rows, r: [rows[f"document_{i + 1}"][r] for i in range(200)]
    copied = texts(hf[:2], 0)
    cut = [t for t in copied if sentence not in t]
    assert 160 <= len(cut) <= 199 and cut[0].startswith("intro") and cut[0].count(".") == 2
    assert texts(hf[:1], 0) == copied  # the same pairs cut when read again
    assert texts(hf[:2], 1) == [ds.corpus.texts([f"d{i}"])[0] for i in range(200)]
    assert as_hf_dataset(ex, ds)[0]["document_1"] == ds.corpus.texts(["d0"])[0]  # off by default


def config(folder, cache, tid, output, student, model, **kw):
    return TrainConfig.from_dict({"output": str(output), "dataset": folder, "cache": cache, "student": student,
                                  "model": model, "examples": {"teacher": tid, "negatives": 3}, "batch_size": 4,
                                  "max_steps": 6, "save_steps": 2, "logging_steps": 1, "learning_rate": 1e-3,
                                  "max_seq_length": 32, **kw})


@pytest.mark.parametrize("loss", ["margin-mse", {"name": "listwise-kl"}, "cprd", "infonce", "ranknet", "pld",
                                  [{"name": "margin-mse", "weight": 1.0}, {"name": "infonce", "weight": 0.1}]])
def test_bi_encoder_trains_with_every_loss(cached, tiny_model_dir, tmp_path, loss):
    from sentence_transformers import SentenceTransformer

    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "bi-encoder", tiny_model_dir, loss=loss), progress=False)
    model = SentenceTransformer(final, device="cpu")  # loads unchanged in sentence-transformers
    assert model.encode(["hello"]).shape == (1, 32)
    assert model.max_seq_length == SentenceTransformer(tiny_model_dir).max_seq_length  # trained on 32, saved as base
    assert os.path.exists(tmp_path / "out" / "loss.png") and os.path.exists(tmp_path / "out" / "loss.jsonl")
    losses = [l for l in open(tmp_path / "out" / "loss.jsonl") if '"loss"' in l]
    assert len(losses) == 6


def tiny_cross_encoder(tmp_path) -> str:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from irdistill.models import packaged_path

    tok = AutoTokenizer.from_pretrained(packaged_path("all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "ce")
    tok.save_pretrained(tmp_path / "ce")
    return str(tmp_path / "ce")


def test_cross_encoder_student_trains_from_labels(cached, tmp_path):
    from sentence_transformers import CrossEncoder

    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "cross-encoder", tiny_cross_encoder(tmp_path),
                         loss="infonce"), progress=False)
    student = CrossEncoder(final, device="cpu")
    assert student.max_seq_length == 32  # the length it trained at: at others a cross-encoder's scores drift
    assert student.predict([("w1 w2", "w1 w2 w3"), ("w1", "w9")]).shape == (2,)
    teacher = build_teacher({"kind": "cross-encoder", "model": final, "device": "cpu"})
    assert teacher.model.max_seq_length == 32 and teacher.config()["max_length"] == 32  # re-ranks as it trained
    longer = build_teacher({"kind": "cross-encoder", "model": final, "device": "cpu", "max_length": 64})
    assert longer.config()["max_length"] == 64


def test_interrupted_training_resumes_to_the_same_model(cached, tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    folder, ds, cache, tid = cached

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 4:
                raise KeyboardInterrupt("simulated interruption after checkpoint-4")

    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train(config(folder, cache, tid, resumed, "bi-encoder", tiny_model_dir), callbacks=[Crash()], progress=False)
    assert os.path.isdir(resumed / "checkpoint-4") and not os.path.exists(resumed / "final")
    a = train(config(folder, cache, tid, resumed, "bi-encoder", tiny_model_dir), progress=False)
    b = train(config(folder, cache, tid, tmp_path / "clean", "bi-encoder", tiny_model_dir), progress=False)
    ta, tb = SentenceTransformer(a, device="cpu"), SentenceTransformer(b, device="cpu")
    for (name, pa_), (_, pb) in zip(ta.named_parameters(), tb.named_parameters()):
        torch.testing.assert_close(pa_, pb, msg=name)


def test_bad_config(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("output: x\ndataset: y\ncache: z\nexamples: {teacher: t}\nlearning_rat: 0.1\n")
    with pytest.raises(InputError, match="unknown training option.*learning_rat"):
        TrainConfig.from_file(path)
    path.write_text("output: [x\n")
    with pytest.raises(InputError, match=r"train.yaml:\d+: malformed YAML"):
        TrainConfig.from_file(path)


@pytest.mark.parametrize("student", ["bi-encoder", "cross-encoder"])
def test_dev_queries_are_held_out_and_evaluated(cached, tiny_model_dir, tmp_path, student):
    import json

    from irdistill.training.train import held_out_queries

    folder, ds, cache, tid = cached
    model = tiny_model_dir if student == "bi-encoder" else tiny_cross_encoder(tmp_path)
    train(config(folder, cache, tid, tmp_path / "out", student, model, dev_fraction=0.25, eval_steps=3,
                 loss="infonce"), progress=False)
    dev = held_out_queries(ds, 0.25, 42)
    assert len(dev) == 6
    evals = [json.loads(l) for l in open(tmp_path / "out" / "loss.jsonl") if "eval_" in l]
    assert len(evals) == 2 and any(k.startswith("eval_dev") and "ndcg@10" in k for k in evals[0])
    info = json.load(open(tmp_path / "out" / "final" / "irdistill.json"))
    assert info["training_examples"] == 18  # one example per query; the 6 dev queries are not trained on


def test_cross_fitted_teacher_scores_each_query_with_the_model_that_left_it_out(cached, tiny_model_dir, tmp_path):
    import json

    from irdistill.data import in_shard
    from irdistill.teachers import build_teacher, score_run
    from irdistill.training import crossfit

    folder, ds, cache_dir, tid = cached
    cache = ScoreCache(cache_dir)
    cfg = {"output": str(tmp_path / "cf"), "dataset": folder, "cache": cache_dir, "model": tiny_model_dir,
           "examples": {"teacher": tid, "negatives": 3}, "batch_size": 4, "max_steps": 2, "save_steps": 2,
           "loss": "infonce", "max_seq_length": 32}
    run = cache.run(tid)
    cid = crossfit(cfg, run, ds, cache, folds=2, progress=False).key
    oof = cache.read(cid)
    assert len(oof) == len(run) and set(oof["qid"]) == set(run["qid"])
    for i, key in enumerate(cache.describe(cid)["folds"]):
        fold = {q for q in ds.queries if in_shard(q, (i, 2))}
        final = tmp_path / "cf" / f"fold-{i}-of-2" / "final"
        assert json.load(open(final / "irdistill.json"))["training_examples"] == len(ds.queries) - len(fold)
        q = sorted(fold)[0]
        mine = oof[oof["qid"] == q].sort_values("docid")
        teacher = build_teacher({"kind": "bi-encoder", "model": str(final)})
        expected = teacher.score_pairs([ds.queries[q]] * len(mine), ds.corpus.texts(mine["docid"].tolist()))
        np.testing.assert_allclose(mine["score"].to_numpy(), expected, rtol=1e-4, atol=1e-5)
        assert set(cache.read(key)["qid"]) == fold  # each fold model scored only the queries it never saw
    assert crossfit(cfg, run, ds, cache, folds=2, progress=False).key == cid  # a rerun trains and scores nothing new

    # a cached member of an ensemble is used as it is; weights fit on the training labels
    from irdistill.data import write_run

    write_run(run, tmp_path / "fit.parquet")
    spec = {"kind": "ensemble", "members": [{"cached": tid}, {"cached": cid}],
            "fit": {"split": "train", "run": str(tmp_path / "fit.parquet")}}
    stats = score_run(spec, run, ds, cache, progress=False)  # the fit split comes from ds's own folder
    eid = stats.key
    assert stats.pairs == 0 and set(cache.read(eid)["qid"]) == set(run["qid"])
    assert sum(cache.describe(eid)["weights"]) == pytest.approx(1.0)
    with pytest.raises(InputError, match="no scores for 24 queries"):
        score_run({"kind": "ensemble", "members": [{"cached": tid}, {"cached": "missing@0"}], "weights": [0.5, 0.5]},
                  run, ds, cache)


def test_cli_cross_fits_a_teacher(cached, tiny_model_dir, tmp_path, capsys):
    import yaml

    from irdistill.cli import main
    from irdistill.data import write_run

    folder, ds, cache_dir, tid = cached
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"output": str(tmp_path / "cf"), "dataset": folder, "cache": cache_dir,
                                   "model": tiny_model_dir, "examples": {"teacher": tid, "negatives": 3},
                                   "batch_size": 4, "max_steps": 1, "save_steps": 1, "loss": "infonce",
                                   "max_seq_length": 32}))
    assert main(["train", "--config", str(cfg), "--crossfit", "2"]) == 2
    assert "--crossfit needs --run" in capsys.readouterr().err
    write_run(ScoreCache(cache_dir).run(tid), tmp_path / "cands.parquet")
    assert main(["train", "--config", str(cfg), "--crossfit", "2", "--run", str(tmp_path / "cands.parquet")]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("teacher crossfit-") and "out-of-fold scores of 24 queries" in last
