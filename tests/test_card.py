"""Model cards: a trained student's README.md (sentence-transformers' card) says what it was distilled from, and
`irdistill card` adds evaluation results to it."""

import json
import os

import pytest

from irdistill.cli import main
from irdistill.training import train
from irdistill.training.card import put_section
from test_training import cached, config, tiny_cross_encoder  # noqa: F401  (fixture)


def sections(card_text: str) -> dict[str, str]:
    """The card rendered to HTML (as the hub renders Markdown), by second-level heading."""
    import markdown

    html = markdown.markdown(card_text, extensions=["tables", "fenced_code"])
    parts = html.split("<h2>")[1:]
    return {p.split("</h2>")[0]: p for p in parts}


@pytest.mark.parametrize("student", ["bi-encoder", "cross-encoder"])
def test_a_trained_student_has_a_card_that_names_its_teacher_loss_data_and_schedule(cached, tiny_model_dir, tmp_path,  # noqa: F811
                                                                                   student):
    from huggingface_hub import ModelCard

    from irdistill.cache import ScoreCache

    folder, ds, cache, tid = cached
    model = tiny_model_dir if student == "bi-encoder" else tiny_cross_encoder(tmp_path)
    loss = [{"name": "listwise-kl", "teacher_temperature": 0.3}, {"name": "infonce", "weight": 0.1}]
    final = train(config(folder, cache, tid, tmp_path / "out", student, model, dev_fraction=0.25, eval_steps=3,
                         loss=loss), progress=False)
    card = ModelCard.load(os.path.join(final, "README.md"))  # the hub's parser: valid YAML metadata
    assert {"irdistill", "knowledge-distillation", "teacher:overlap"} <= set(card.data.tags)
    assert card.data.library_name == "sentence-transformers"
    text = card.text
    distill = sections(text)["Distillation"]
    assert f"cache key <code>{tid}</code>" in distill and "Teacher:</strong> overlap" in distill
    assert json.dumps(ScoreCache(cache).describe(tid), indent=1, sort_keys=True).splitlines()[1] in text
    assert "listwise-kl + infonce" in distill and '"teacher_temperature": 0.3' in distill and '"weight": 0.1' in distill
    assert "data, split <code>train</code>: 18 training examples from 18 queries (6 more held out" in distill
    assert "6 steps (1.5 epochs), batch size 4, learning rate 0.001" in distill and "seed 42" in distill
    assert f"Student:</strong> {student}" in distill
    assert "References:</strong> Tamber et al., 2025" in distill and "van den Oord et al., 2018" in distill
    dev = [json.loads(line) for line in open(tmp_path / "out" / "loss.jsonl") if "eval_runtime" in line][-1]
    ndcg = next(v for k, v in dev.items() if k.endswith("ndcg@10"))
    assert f"Dev nDCG@10:</strong> {ndcg:.4f} on the 6 held-out queries (step 6)" in distill
    assert text.index("## Distillation") < text.index("## Model Details")  # near the top, in the same card
    assert "Training Details" in sections(text)  # sentence-transformers' own sections are all still there
    if student == "bi-encoder":
        from sentence_transformers import SentenceTransformer

        assert SentenceTransformer(final, device="cpu").encode(["w1 w2"]).shape == (1, 32)
    else:
        from sentence_transformers import CrossEncoder

        assert CrossEncoder(final, device="cpu").predict([("w1", "w1 w2")]).shape == (1,)


def test_evaluation_results_land_in_the_card(cached, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    from huggingface_hub import ModelCard

    from irdistill.models import fingerprint

    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "bi-encoder", tiny_model_dir, loss="infonce"),
                  progress=False)
    before = fingerprint(final)
    runs = tmp_path / "runs"
    for split in ("train", "test"):
        assert main(["evaluate", "--dataset", folder, "--split", split, "--retriever", "dense", "--model", final,
                     "--index", str(tmp_path / "index"), "--output", str(runs / split), "--metrics", "ndcg@10,mrr@10",
                     "-q"]) == 0
    capsys.readouterr()
    assert main(["card", "--model", final, str(runs / "train"), str(runs / "test" / "metrics.json")]) == 0
    assert "(2 results added)" in capsys.readouterr().out
    assert main(["card", "--model", final, str(runs / "test")]) == 0  # again: replaced, not repeated
    card = ModelCard.load(os.path.join(final, "README.md"))
    ours = [r for r in card.data.eval_results if r.task_type == "retrieval"]
    measured = {s: json.load(open(runs / s / "metrics.json")) for s in ("train", "test")}
    assert sorted((r.dataset_split, r.metric_type, r.metric_value) for r in ours) == sorted(
        (s, m, pytest.approx(v)) for s in measured for m, v in measured[s]["metrics"].items())
    assert all(r.dataset_name == "data" and r.dataset_config == measured[r.dataset_split]["run"] for r in ours)
    table = sections(card.text)["Evaluation (irdistill)"]
    assert table.count("<tr>") == 3 and f"{measured['test']['metrics']['ndcg@10']:.4f}" in table
    assert card.text.index("irdistill:distillation") < card.text.index("irdistill:evaluation")
    assert fingerprint(final) == before  # the card is not part of the model: its indexes stay valid


def test_card_input_errors(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "runs").mkdir()
    assert main(["card", "--model", str(tmp_path / "model"), str(tmp_path / "runs")]) == 2
    assert "model: no model card (README.md) here" in capsys.readouterr().err
    (tmp_path / "model" / "README.md").write_text("---\ntags: [x]\n---\n# m\n")
    assert main(["card", "--model", str(tmp_path / "model"), str(tmp_path / "runs")]) == 2
    assert "runs: no metrics.json of `irdistill evaluate` here" in capsys.readouterr().err
    (tmp_path / "runs" / "metrics.json").write_text('{"run": "r", "metrics": {"ndcg@10": "high"}}')
    assert main(["card", "--model", str(tmp_path / "model"), str(tmp_path / "runs")]) == 2
    assert "metrics.json: not a metrics.json of `irdistill evaluate`" in capsys.readouterr().err
    assert (tmp_path / "model" / "README.md").read_text() == "---\ntags: [x]\n---\n# m\n"  # nothing written
    result = {"run": "r", "dataset": "../d/toy", "split": "test", "queries": 3, "metrics": {"ndcg@10": 0.5}}
    # a card takes only its own model's results: not a BM25 run's, not another model's, not one that names none
    for made_by, words in [({}, "records no model"), ({"retriever": "bm25"}, "measured with bm25, no model"),
                           ({"retriever": "dense", "model": "m", "weights": "0" * 16}, "weights are not those")]:
        (tmp_path / "runs" / "metrics.json").write_text(json.dumps({**result, **made_by}))
        assert main(["card", "--model", str(tmp_path / "model"), str(tmp_path / "runs")]) == 2
        assert words in capsys.readouterr().err
    from irdistill.models import fingerprint

    (tmp_path / "runs" / "metrics.json").write_text(json.dumps(
        {**result, "retriever": "dense", "model": "m", "weights": fingerprint(str(tmp_path / "model"))}))
    assert main(["card", "--model", str(tmp_path / "model"), str(tmp_path / "runs")]) == 0
    assert "| toy | test | `r` | 0.5000 |" in (tmp_path / "model" / "README.md").read_text()


def test_sections_are_replaced_in_place():
    text = "# m\n\nintro\n\n## Model Details\nx\n"
    once = put_section(text, "distillation", "## Distillation\na")
    assert once.index("## Distillation") < once.index("## Model Details")
    twice = put_section(put_section(once, "evaluation", "## Evaluation (irdistill)\nb"), "distillation",
                        "## Distillation\nc")
    assert twice.count("## Distillation") == 1 and "\nc\n" in twice and "\na\n" not in twice
    assert twice.index("## Distillation") < twice.index("## Evaluation (irdistill)") < twice.index("## Model Details")
