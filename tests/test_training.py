"""Training from cached teacher scores with tiny students (built from a config): examples, students, resume."""

import os
import sys

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
    from conftest import random_collection, write_beir

    docs, queries = random_collection(40, 24, doc_words=12, vocabulary=40)
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
                                  "max_steps": 6, "save_steps": 100, "logging_steps": 1, "learning_rate": 1e-3,
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
        train(config(folder, cache, tid, resumed, "bi-encoder", tiny_model_dir, save_steps=2), callbacks=[Crash()],
              progress=False)
    assert os.path.isdir(resumed / "checkpoint-4") and not os.path.exists(resumed / "final")
    a = train(config(folder, cache, tid, resumed, "bi-encoder", tiny_model_dir, save_steps=2), progress=False)
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


# a folder holds one run (issue 32) ----------------------------------------------------------------------------------
def test_an_output_folder_is_reused_only_for_the_run_that_made_it(cached, tiny_model_dir, tmp_path, monkeypatch):
    """Change one input at a time: the learning rate, the loss, the qrels, the starting model's weights each refuse
    the folder; logging options and nothing changed reuse it, without loading anything."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    folder, ds, cache, tid = cached
    model = str(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    out = tmp_path / "out"
    cfg = lambda start=model, **kw: config(folder, cache, tid, out, "bi-encoder", start, **{"max_steps": 2, **kw})
    final = train(cfg(), progress=False)
    record = json.loads((out / "training.json").read_text())
    assert record["inputs"] == {**ds.fingerprint(), "weights": record["inputs"]["weights"]}
    assert len(record["inputs"]["weights"]) == 16
    assert "output" not in record["config"] and record["config"]["learning_rate"] == 1e-3

    def refused(match, **kw):
        with pytest.raises(InputError, match=match) as err:
            train(cfg(**kw), progress=False)
        assert str(err.value).startswith(f"{out}: holds a run of another config (")
        assert str(err.value).endswith("); use another --output or remove it")

    refused(r"\(learning_rate 0.001 -> 0.002\)", learning_rate=2e-3)
    refused(r"\(loss margin-mse -> infonce\)", loss="infonce")
    refused(r"\(examples.negatives 3 -> 2\)", examples={"teacher": tid, "negatives": 2})
    refused(rf"\(model {model} -> {tiny_model_dir}\)", start=tiny_model_dir)  # the same weights, named otherwise
    with monkeypatch.context() as m:  # nothing loads: the folder's final is returned as it is
        m.setattr(sys.modules["irdistill.training.train"], "get_student", lambda name: pytest.fail("trained again"))
        assert train(cfg(), progress=False) == final
        assert train(cfg(logging_steps=5, run_name="x", save_steps=1, report_to="none"), progress=False) == final

    qrels = os.path.join(folder, "qrels", "train.tsv")
    original = open(qrels).read()
    open(qrels, "w").write(original.replace("q0\td0\t1", "q0\td1\t1"))
    refused(rf"\(qrels {record['inputs']['qrels']} -> [0-9a-f]{{16}}\)")
    open(qrels, "w").write(original)

    weights = os.path.join(model, "model.safetensors")
    tensors = load_file(weights)
    name = next(n for n in tensors if n.endswith("word_embeddings.weight"))
    tensors[name][0, 0] += 1.0
    save_file(tensors, weights, metadata={"format": "pt"})
    refused(rf"\(weights {record['inputs']['weights']} -> [0-9a-f]{{16}}\)")


def test_checkpoints_resume_only_for_their_run_and_older_folders_are_judged_by_their_final(cached, tiny_model_dir,
                                                                                           tmp_path, monkeypatch):
    import json
    import shutil

    folder, ds, cache, tid = cached
    out = tmp_path / "out"
    cfg = lambda **kw: config(folder, cache, tid, out, "bi-encoder", tiny_model_dir, **{"max_steps": 2, "save_steps": 2, **kw})
    final = train(cfg(), progress=False)
    shutil.rmtree(final)  # as if killed after its last checkpoint
    with pytest.raises(InputError, match=r"holds a run of another config \(learning_rate 0.001 -> 0.002\)"):
        train(cfg(learning_rate=2e-3), progress=False)
    assert not os.path.exists(final)
    assert train(cfg(), progress=False) == final and os.path.exists(os.path.join(final, "config.json"))

    os.remove(out / "training.json")  # a folder an older irdistill wrote: final/irdistill.json is its record
    with monkeypatch.context() as m:
        m.setattr(sys.modules["irdistill.training.train"], "get_student", lambda name: pytest.fail("trained again"))
        assert train(cfg(), progress=False) == final and not os.path.exists(out / "training.json")
    with pytest.raises(InputError, match=r"another config \(learning_rate 0.001 -> 0.002\)"):
        train(cfg(learning_rate=2e-3), progress=False)
    old = json.loads(open(os.path.join(final, "irdistill.json")).read())
    del old["merge_alpha"]  # an option older versions did not have counts as its default
    open(os.path.join(final, "irdistill.json"), "w").write(json.dumps(old))
    with monkeypatch.context() as m:
        m.setattr(sys.modules["irdistill.training.train"], "get_student", lambda name: pytest.fail("trained again"))
        assert train(cfg(), progress=False) == final
    shutil.rmtree(final)  # bare checkpoints of an older irdistill: nothing says what made them
    with pytest.raises(InputError, match="holds checkpoints or a model but no record"):
        train(cfg(), progress=False)
    shutil.rmtree(out)  # a new folder trains
    assert train(cfg(learning_rate=2e-3), progress=False) == final
    assert json.loads((out / "training.json").read_text())["config"]["learning_rate"] == 2e-3


def test_extra_arguments_that_the_config_sets_already_are_refused(cached, tiny_model_dir, tmp_path):
    folder, ds, cache, tid = cached
    cfg = config(folder, cache, tid, tmp_path / "out", "bi-encoder", tiny_model_dir, extra={"seed": 1})
    with pytest.raises(InputError, match="option extra: seed is set from the config already"):
        train(cfg, progress=False)
    assert not (tmp_path / "out" / "final").exists()
