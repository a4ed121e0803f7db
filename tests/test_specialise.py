"""Keeping what the student knew: weight interpolation and soups (merge), LoRA with merge-on-save, and the starting
model as a regularising teacher; tiny models built from a config."""

import os
import subprocess
import sys

import pytest
import torch

from irdistill.cache import ScoreCache
from irdistill.cli import main
from irdistill.errors import InputError
from irdistill.models.merge import interpolate, merge_models
from irdistill.teachers import score_run
from irdistill.training import ExampleConfig, TrainConfig, build_examples, train
from irdistill.training.losses import ListwiseKLLoss, make_loss
from irdistill.training.losses.base import apply_loss
from test_colbert import tiny_colbert  # noqa: F401  (fixture)
from test_splade import tiny_mlm, tiny_splade  # noqa: F401  (fixtures)
from test_training import cached, config, tiny_cross_encoder  # noqa: F401  (fixture)


def weights(path, cls="SentenceTransformer"):
    import sentence_transformers

    return {k: v.clone() for k, v in getattr(sentence_transformers, cls)(path, device="cpu").state_dict().items()}


def perturbed(path, out, seed, cls="SentenceTransformer"):
    """A copy of the model at ``path`` with noise added to every floating-point weight."""
    import sentence_transformers

    model = getattr(sentence_transformers, cls)(path, device="cpu")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.01)
    model.save(str(out))
    return str(out)


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


# merge -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_merging_a_model_with_itself_returns_it(tiny_model_dir, tmp_path, alpha):
    out = merge_models(tiny_model_dir, [tiny_model_dir], alpha, str(tmp_path / "m"))
    assert_same(weights(out), weights(tiny_model_dir))


def test_alpha_0_is_the_base_1_the_fine_tuned_and_between_the_line(tiny_model_dir, tmp_path):
    tuned = perturbed(tiny_model_dir, tmp_path / "tuned", 1)
    base, ft = weights(tiny_model_dir), weights(tuned)
    assert_same(weights(merge_models(tiny_model_dir, [tuned], 0, str(tmp_path / "a0"))), base)
    assert_same(weights(merge_models(tiny_model_dir, [tuned], 1, str(tmp_path / "a1"))), ft)
    half = weights(merge_models(tiny_model_dir, [tuned], 0.25, str(tmp_path / "a25")))
    for k in base:
        if base[k].is_floating_point():
            torch.testing.assert_close(half[k], 0.75 * base[k] + 0.25 * ft[k])
    assert os.path.exists(tmp_path / "a25" / "merge.json") and os.path.exists(tmp_path / "a25" / "tokenizer.json")


def test_a_soup_averages_several_models(tiny_model_dir, tmp_path):
    m1, m2 = perturbed(tiny_model_dir, tmp_path / "m1", 1), perturbed(tiny_model_dir, tmp_path / "m2", 2)
    w1, w2, base = weights(m1), weights(m2), weights(tiny_model_dir)
    soup = weights(merge_models(tiny_model_dir, [m1, m2], 1.0, str(tmp_path / "soup")))
    wise = weights(merge_models(tiny_model_dir, [m1, m2], 0.5, str(tmp_path / "wise")))
    for k in base:
        if base[k].is_floating_point():
            torch.testing.assert_close(soup[k], (w1[k] + w2[k]) / 2)
            torch.testing.assert_close(wise[k], 0.5 * base[k] + 0.25 * (w1[k] + w2[k]))


def test_interpolate_keeps_integer_buffers_and_dtype():
    a = {"w": torch.zeros(2, dtype=torch.bfloat16), "ids": torch.arange(3)}
    b = {"w": torch.ones(2, dtype=torch.bfloat16), "ids": torch.arange(3)}
    out = interpolate(a, [b], 0.5)
    assert out["w"].dtype == torch.bfloat16 and torch.equal(out["w"], torch.full((2,), 0.5, dtype=torch.bfloat16))
    assert torch.equal(out["ids"], torch.arange(3))


@pytest.mark.parametrize("student", ["cross-encoder", "colbert", "splade"])
def test_every_student_type_merges_and_loads_unchanged(student, tiny_colbert, tiny_splade, tmp_path):  # noqa: F811
    import sentence_transformers

    if student == "cross-encoder":
        from sentence_transformers import CrossEncoder

        path, cls = str(tmp_path / "ce-st"), "CrossEncoder"
        CrossEncoder(tiny_cross_encoder(tmp_path), num_labels=1, device="cpu").save(path)
    else:
        path, cls = {"colbert": (tiny_colbert, "MultiVectorEncoder"), "splade": (tiny_splade, "SparseEncoder")}[student]
    tuned = perturbed(path, tmp_path / "tuned", 3, cls)
    assert_same(weights(merge_models(path, [tuned], 0.0, str(tmp_path / "a0")), cls), weights(path, cls))
    assert_same(weights(merge_models(tuned, [tuned], 0.7, str(tmp_path / "self")), cls), weights(tuned, cls))
    merged = getattr(sentence_transformers, cls)(merge_models(path, [tuned], 0.5, str(tmp_path / "m")), device="cpu")
    assert type(merged).__name__ == cls


def test_mismatched_models_are_refused_in_one_line(tiny_model_dir, tiny_splade, tmp_path, capsys):  # noqa: F811
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(cfg).save_pretrained(tmp_path / "bert")
    SentenceTransformer(tiny_model_dir).tokenizer.save_pretrained(tmp_path / "bert")
    SentenceTransformer(modules=[models.Transformer(str(tmp_path / "bert")), models.Pooling(16)]).save(
        str(tmp_path / "small"))
    with pytest.raises(InputError, match="not the architecture of") as e:
        merge_models(tiny_model_dir, [str(tmp_path / "small")], 0.5, str(tmp_path / "out"))
    assert "\n" not in str(e.value)
    capsys.readouterr()
    assert main(["merge", "--base", tiny_splade, "--model", tiny_model_dir, "--alpha", "0.5", "--output",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("irdistill: error: ") and "cannot merge a SparseEncoder with a SentenceTransformer" in err
    assert main(["merge", "--base", tiny_model_dir, "--model", tiny_model_dir, "--alpha", "1.5", "--output",
                 str(tmp_path / "out")]) == 2
    assert main(["merge", "--base", tiny_model_dir, "--model", str(tmp_path / "nope"), "--alpha", "0.5", "--output",
                 str(tmp_path / "out")]) == 2
    assert not os.path.exists(tmp_path / "out")


def test_cli_merge(tiny_model_dir, tmp_path, capsys):
    tuned = perturbed(tiny_model_dir, tmp_path / "tuned", 1)
    assert main(["merge", "--base", tiny_model_dir, "--model", tuned, "--model", tuned, "--alpha", "1",
                 "--output", str(tmp_path / "out")]) == 0
    assert "model:" in capsys.readouterr().out
    assert_same(weights(str(tmp_path / "out")), weights(tuned))


# training options ---------------------------------------------------------------------------------------------------
def test_merge_alpha_0_after_training_gives_back_the_start(cached, tiny_model_dir, tmp_path):  # noqa: F811
    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "bi-encoder", tiny_model_dir, merge_alpha=0.0,
                         max_steps=2), progress=False)
    assert_same(weights(final), weights(tiny_model_dir))
    half = train(config(folder, cache, tid, tmp_path / "half", "bi-encoder", tiny_model_dir, merge_alpha=0.5,
                        max_steps=2), progress=False)
    full = train(config(folder, cache, tid, tmp_path / "full", "bi-encoder", tiny_model_dir, max_steps=2),
                 progress=False)
    base, ft, mid = weights(tiny_model_dir), weights(full), weights(half)
    for k in base:
        if base[k].is_floating_point():
            torch.testing.assert_close(mid[k], (base[k] + ft[k]) / 2)


def test_merge_alpha_keeps_a_fresh_head_as_trained(cached, tiny_model_dir, tmp_path):  # noqa: F811
    """A cross-encoder on a bi-encoder's weights starts with a random head: WiSE-FT merges back only what the start
    checkpoint had, so with alpha 0 the body is the bi-encoder's again and the head is the trained one."""
    folder, ds, cache, tid = cached
    torch.manual_seed(0)  # the same random head in both runs
    back = train(config(folder, cache, tid, tmp_path / "back", "cross-encoder", tiny_model_dir, merge_alpha=0.0,
                        max_steps=2), progress=False)
    torch.manual_seed(0)
    full = train(config(folder, cache, tid, tmp_path / "full", "cross-encoder", tiny_model_dir, max_steps=2),
                 progress=False)
    start, merged, trained = (weights(p, "CrossEncoder") for p in (tiny_model_dir, back, full))
    head = {k for k in merged if ".classifier." in k}
    assert head and all(torch.equal(merged[k], trained[k]) for k in head)
    assert all(torch.equal(merged[k], start[k]) for k in merged.keys() - head if merged[k].is_floating_point())
    assert any(not torch.equal(trained[k], start[k]) for k in trained.keys() - head)  # it did train


LORA = {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["query", "value"]}


def test_lora_moves_only_the_adapted_layers_and_saves_without_peft(cached, tiny_model_dir, tmp_path):  # noqa: F811
    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "bi-encoder", tiny_model_dir, lora=LORA,
                         loss="infonce"), progress=False)
    base, tuned = weights(tiny_model_dir), weights(final)
    assert base.keys() == tuned.keys()  # merged: no adapter or base_layer keys left
    moved = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert moved and all(k.rsplit(".", 2)[-2] in ("query", "value") and k.endswith(".weight") for k in moved)
    assert not any(f.startswith("adapter") for f in os.listdir(final))
    code = ("import sys; sys.modules['peft'] = None\nfrom sentence_transformers import SentenceTransformer\n"
            f"print(SentenceTransformer({final!r}, device='cpu').encode(['w1 w2']).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "(1, 32)" in out.stdout, out.stderr[-2000:]


def test_interrupted_lora_training_resumes_to_the_same_model(cached, tiny_model_dir, tmp_path):  # noqa: F811
    from transformers import TrainerCallback

    folder, ds, cache, tid = cached

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 4:
                raise KeyboardInterrupt("simulated interruption after checkpoint-4")

    cfg = lambda out: config(folder, cache, tid, out, "bi-encoder", tiny_model_dir, lora=LORA, loss="infonce",
                             save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(tmp_path / "resumed"), callbacks=[Crash()], progress=False)
    a, b = train(cfg(tmp_path / "resumed"), progress=False), train(cfg(tmp_path / "clean"), progress=False)
    assert_same(weights(a), weights(b))


def test_lora_on_a_cross_encoder(cached, tmp_path):  # noqa: F811
    folder, ds, cache, tid = cached
    base = tiny_cross_encoder(tmp_path)
    final = train(config(folder, cache, tid, tmp_path / "out", "cross-encoder", base, loss="infonce",
                         lora={**LORA, "modules_to_save": ["classifier"]}), progress=False)
    before, after = weights(base, "CrossEncoder"), weights(final, "CrossEncoder")
    assert before.keys() == after.keys()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert any("classifier" in k for k in moved) and not any("intermediate" in k for k in moved)


def test_bad_lora_and_merge_options(tmp_path):
    base = {"output": "x", "dataset": "y", "cache": "z", "examples": {"teacher": "t"}}
    for bad, match in [({"lora": {"rank": 8}}, "unknown lora option"), ({"lora": {"r": 0}}, "r >= 1"),
                       ({"lora": {"r": "8"}}, "lora.r must be int"), ({"merge_alpha": 2}, "merge_alpha"),
                       ({"loss": [{"name": "infonce"}, {"name": "regularizer"}]}, "needs examples: {regularizer")]:
        with pytest.raises(InputError, match=match):
            TrainConfig.from_dict({**base, **bad})


# the starting model as a regularising teacher ----------------------------------------------------------------------
def test_examples_carry_the_regulariser_scores(cached, tiny_model_dir):  # noqa: F811
    folder, ds, cache, tid = cached
    run = ScoreCache(cache).run(tid, list(ds.queries))
    ref = score_run({"kind": "bi-encoder", "model": tiny_model_dir}, run[run["qid"] != "q0"], ds, ScoreCache(cache),
                    progress=False).key
    plain = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=3))
    ex = build_examples(ds, ScoreCache(cache), ExampleConfig(teacher=tid, negatives=3, regularizer=ref))
    assert len(ex) == len(plain) - 1 and "q0" not in {e["query_id"] for e in ex}  # q0 has no regulariser scores
    cached_ref = ScoreCache(cache).read(ref).set_index(["qid", "docid"])["score"]
    for e in ex:
        assert len(e["scores"]) == 2 and e["scores"][0] == next(p for p in plain if p["query_id"] == e["query_id"]
                                                                 and p["document_ids"] == e["document_ids"])["scores"]
        assert e["scores"][1] == pytest.approx([cached_ref[e["query_id"], d] for d in e["document_ids"]])


def test_regularizer_loss_teaches_the_reference_scores():
    torch.manual_seed(0)
    scores, targets, reference = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    labels = torch.stack([targets, reference], 1)  # (B, 2, N)
    reg = make_loss({"name": "regularizer"})
    kl = ListwiseKLLoss(0.05, 0.05, normalize=None)
    torch.testing.assert_close(apply_loss(reg, scores, labels), kl(scores, reference))
    assert apply_loss(reg, reference, labels) < 1e-6  # the student where its reference is: nothing to pay
    mixed = make_loss([{"name": "infonce"}, {"name": "regularizer", "weight": 2.0}])
    parts = apply_loss(mixed, scores, labels)
    torch.testing.assert_close(parts["regularizer"], 2.0 * kl(scores, reference))
    torch.testing.assert_close(apply_loss(make_loss("margin-mse"), scores, labels),
                               make_loss("margin-mse")(scores, targets))  # other losses see the teacher only
    with pytest.raises(ValueError, match="regularizer"):
        apply_loss(reg, scores, targets)


@pytest.mark.parametrize("student", ["bi-encoder", "cross-encoder"])
def test_students_train_with_the_regulariser(cached, tiny_model_dir, tmp_path, student):  # noqa: F811
    folder, ds, cache, tid = cached
    run = ScoreCache(cache).run(tid, list(ds.queries))
    ref = score_run({"kind": "bi-encoder", "model": tiny_model_dir}, run, ds, ScoreCache(cache), progress=False).key
    model = tiny_model_dir if student == "bi-encoder" else tiny_cross_encoder(tmp_path)
    cfg = config(folder, cache, tid, tmp_path / "out", student, model, max_steps=2,
                 loss=[{"name": "infonce"}, {"name": "regularizer", "weight": 0.5}],
                 examples={"teacher": tid, "negatives": 3, "regularizer": ref})
    train(cfg, progress=False)
    logged = open(tmp_path / "out" / "loss.jsonl").read()
    assert '"regularizer"' in logged or "regularizer" in logged
