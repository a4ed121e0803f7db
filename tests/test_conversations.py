"""Conversational collections: TREC CAsT topics in each year's format give query views; an LLM rewrite becomes a view;
teachers score a rewrite view and a SPLADE student trains on the conversation view (the DiSCo recipe)."""

import contextlib
import http.server
import json
import os
import threading

import pytest

from irdistill.cache import ScoreCache
from irdistill.cli import main
from irdistill.data import load_dataset, run_from_dict, write_run
from irdistill.data.conversations import query_views, turns_from_records
from irdistill.errors import InputError
from irdistill.training import TrainConfig, as_hf_dataset, build_examples, train
from irdistill.training.examples import ExampleConfig
from test_splade import tiny_mlm  # noqa: F401  (fixture)

# the topic files of TREC CAsT, cut to a few turns, in each year's layout (github.com/daltonj/treccastweb)
CAST = {
    2019: [{"number": 1, "title": "Career choice for nursing", "description": "Roles in nursing.",
            "turn": [{"number": 1, "raw_utterance": "What is a physician's assistant?"},
                     {"number": 2, "raw_utterance": "What are the educational requirements required to become one?"}]}],
    2020: [{"number": 81, "title": "Garage doors", "description": "Fixing a garage door opener.",
            "turn": [{"number": 1, "raw_utterance": "How do you know when your garage door opener is going bad?",
                      "automatic_rewritten_utterance": "How do you know when your garage door opener is going bad?",
                      "manual_rewritten_utterance": "How do you know when your garage door opener is going bad?",
                      "manual_canonical_result_id": "MARCO_d1", "query_turn_dependence": [],
                      "result_turn_dependence": None},
                     {"number": 2, "raw_utterance": "Now it stopped working. Why?",
                      "automatic_rewritten_utterance": "Now it stopped working. Why?",
                      "manual_rewritten_utterance": "Why did my garage door opener stop working?",
                      "manual_canonical_result_id": "MARCO_d2", "query_turn_dependence": [1],
                      "result_turn_dependence": 1},
                     {"number": 3, "raw_utterance": "How much does it cost to replace it?",
                      "automatic_rewritten_utterance": "How much does it cost to replace the opener?",
                      "manual_rewritten_utterance": "How much does it cost to replace a garage door opener?",
                      "manual_canonical_result_id": "MARCO_d3", "query_turn_dependence": [1],
                      "result_turn_dependence": None}]},
           {"number": 82, "title": "Volcanoes", "description": "How volcanoes erupt.",
            "turn": [{"number": 1, "raw_utterance": "What makes a volcano erupt?",
                      "automatic_rewritten_utterance": "What makes a volcano erupt?",
                      "manual_rewritten_utterance": "What makes a volcano erupt?",
                      "manual_canonical_result_id": "MARCO_d4", "query_turn_dependence": [],
                      "result_turn_dependence": None},
                     {"number": 2, "raw_utterance": "Which one erupted last?",
                      "automatic_rewritten_utterance": "Which one erupted last?",
                      "manual_rewritten_utterance": "Which volcano erupted last?",
                      "manual_canonical_result_id": "MARCO_d5", "query_turn_dependence": [1],
                      "result_turn_dependence": None}]}],
    2021: [{"number": 106, "turn": [
        {"number": 1, "raw_utterance": "I just had a breast biopsy for cancer. What are the most common types?",
         "automatic_rewritten_utterance": "What are the most common types of breast cancer?",
         "manual_rewritten_utterance": "What are the most common types of breast cancer?",
         "canonical_result_id": "MARCO_D59865_1", "passage": "..."},
        {"number": 2, "raw_utterance": "Once it breaks out, how likely is it to spread?",
         "automatic_rewritten_utterance": "Once it breaks out, how likely is breast cancer to spread?",
         "manual_rewritten_utterance": "Once breast cancer breaks out, how likely is it to spread?",
         "canonical_result_id": "MARCO_D59865_2", "passage": "..."}]}],
    2022: [{"number": "132", "turn": [
        {"number": "1-1", "participant": "User", "utterance": "Tell me about the Neverending Story film.",
         "manual_rewritten_utterance": "Tell me about the Neverending Story film.", "response": "It is a 1984 film.",
         "provenance": ["MARCO_01_1"], "parent": None},
        {"number": "1-2", "participant": "System", "utterance": "Do you want to know about the book?",
         "parent": "1-1"},
        {"number": "1-3", "participant": "User", "utterance": "No, what is it about?",
         "manual_rewritten_utterance": "What is the Neverending Story film about?", "response": "A boy and a book.",
         "provenance": [], "parent": "1-2"}]}],
}


def cast_records(year: int, tmp_path):
    """The year's fixture read by ir_datasets' own CAsT topic reader (its query records)."""
    from ir_datasets.datasets import trec_cast

    path = tmp_path / f"cast{year}.json"
    path.write_text(json.dumps(CAST[year]))

    class File:  # what ir_datasets reads a downloaded file through
        @contextlib.contextmanager
        def stream(self):
            with open(path, "rb") as f:
                yield f

    kind = {2019: "Cast2019Query", 2020: "Cast2020Query", 2021: "Cast2021Query", 2022: "Cast2022Query"}[year]
    return list(trec_cast.CastQueries(File(), getattr(trec_cast, kind)).queries_iter())


def test_cast_topics_of_every_year_give_query_views(tmp_path):
    views = query_views(turns_from_records(cast_records(2019, tmp_path)))
    assert set(views) == {"raw", "conversation"}
    assert views["conversation"]["1_2"] == ("What are the educational requirements required to become one? [SEP] "
                                            "What is a physician's assistant?")
    views = query_views(turns_from_records(cast_records(2020, tmp_path)))
    assert set(views) == {"raw", "conversation", "manual", "automatic"}
    assert views["manual"]["81_2"] == "Why did my garage door opener stop working?"
    assert views["conversation"]["81_3"].split(" [SEP] ") == [
        "How much does it cost to replace it?", "Now it stopped working. Why?",
        "How do you know when your garage door opener is going bad?"]
    assert views["conversation"]["82_1"] == "What makes a volcano erupt?"  # a new topic starts afresh
    views = query_views(turns_from_records(cast_records(2021, tmp_path)))
    assert views["automatic"]["106_2"] == "Once it breaks out, how likely is breast cancer to spread?"
    views = query_views(turns_from_records(cast_records(2022, tmp_path)), history=2)
    assert sorted(views["raw"]) == ["132_1-1", "132_1-3"]  # the system's turn is context, not a query
    assert views["conversation"]["132_1-3"] == ("No, what is it about? [SEP] Tell me about the Neverending Story "
                                                "film. [SEP] Do you want to know about the book?")


def test_an_ir_datasets_conversational_collection_loads_with_its_views(tmp_path):
    from ir_datasets.formats import GenericDoc, TrecQrel

    from irdistill.data.dataset import _load_ir_dataset

    records = cast_records(2020, tmp_path)

    class CAsT:  # an ir_datasets dataset, as trec-cast/v1/2020/judged answers
        has_docs = has_qrels = lambda self: True
        docs_count = lambda self: 5
        docs_namespace = lambda self: "test-cast-fixture"
        docs_iter = lambda self: iter([GenericDoc(f"MARCO_d{i}", f"passage {i}") for i in range(1, 6)])
        queries_iter = lambda self: iter(records)
        qrels_iter = lambda self: iter([TrecQrel(r.query_id, f"MARCO_d{i}", 2, "0") for i, r in enumerate(records, 1)])

    ds = _load_ir_dataset(CAsT(), "trec-cast/v1/2020/judged", False)
    assert (ds.name, ds.split, len(ds.queries)) == ("trec-cast-v1-2020", "judged", 5)
    assert ds.queries["81_2"] == "Now it stopped working. Why?"  # the turn as said
    assert ds.query_texts("manual")["81_3"] == "How much does it cost to replace a garage door opener?"
    assert ds.query_texts("conversation")["81_2"].endswith("going bad?")
    with pytest.raises(InputError, match="no query view 'llm'"):
        ds.query_texts("llm")


def write_conversations(folder, tmp_path):
    """A BEIR folder of the 2020 fixture: each turn's canonical passage and distractors; views as query files;
    split train holds every turn, test the second topic's."""
    views = query_views(turns_from_records(cast_records(2020, tmp_path)))
    topics = {"d1": "garage door opener going bad signs noise", "d2": "garage door opener stopped working reasons",
              "d3": "garage door opener replacement cost price", "d4": "volcano eruption magma pressure",
              "d5": "volcano mount etna recent activity"}
    docs = {**topics, **{f"x{i}": f"unrelated passage number {i} about cooking pasta" for i in range(6)}}
    os.makedirs(folder / "qrels")
    with open(folder / "corpus.jsonl", "w") as f:
        for d, text in docs.items():
            f.write(json.dumps({"_id": d, "title": "", "text": text}) + "\n")
    for name in ("raw", "conversation", "manual"):
        with open(folder / ("queries.jsonl" if name == "raw" else f"queries.{name}.jsonl"), "w") as f:
            for q, text in views[name].items():
                f.write(json.dumps({"_id": q, "text": text}) + "\n")
    for split, topics in (("train", CAST[2020]), ("test", CAST[2020][1:])):
        with open(folder / "qrels" / f"{split}.tsv", "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for topic in topics:
                for t in topic["turn"]:
                    f.write(f"{topic['number']}_{t['number']}\t{t['manual_canonical_result_id'][6:]}\t2\n")
    return str(folder), docs


@contextlib.contextmanager
def rewriting_llm():
    """An OpenAI-compatible chat server that rewrites a turn by appending the first earlier turn's last words."""
    asked = []

    class Chat(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            asked.append(prompt)
            earlier = [l[2:] for l in prompt.splitlines() if l.startswith("- ")]
            question = next(l for l in prompt.splitlines() if l.startswith("Question: "))[len("Question: "):]
            text = question + (" (" + " ".join(earlier[0].split()[-4:]) + ")" if earlier else "")
            reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": f"Rewritten question: {text}"}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(reply.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()


@pytest.mark.slow
def test_disco_rewrite_then_teachers_on_rewrites_then_a_splade_student_on_the_conversation(
        tmp_path, tiny_model_dir, tiny_mlm, capsys):  # noqa: F811
    folder, docs = write_conversations(tmp_path / "cast", tmp_path)
    rewrites = str(tmp_path / "llm.jsonl")
    with rewriting_llm() as (url, asked):
        rewrite = ["rewrite", "--dataset", folder, "--split", "train", "--llm", "rewriter", "--option",
                   f"endpoint={url}", "--output", rewrites]
        assert main(rewrite) == 0 and len(asked) == 5
        assert main(rewrite) == 0 and len(asked) == 5  # cached: the LLM is asked nothing again
    llm = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(rewrites)}
    assert llm["81_2"] == "Now it stopped working. Why? (opener is going bad?)"
    capsys.readouterr()

    # one teacher per rewrite view (a person's, an LLM's), fused as the ensemble teachers are
    run = str(tmp_path / "run.parquet")
    write_run(run_from_dict({q: {d: 0.0 for d in docs} for q in llm}), run)
    member = lambda view: {"kind": "bi-encoder", "model": tiny_model_dir, "query_view": view}
    teacher = tmp_path / "teachers.json"
    teacher.write_text(json.dumps({"kind": "ensemble", "members": [member("manual"), member("llm")],
                                   "weights": [0.5, 0.5]}))
    cache = str(tmp_path / "cache")
    assert main(["score", "--teacher", str(teacher), "--run", run, "--dataset", folder, "--split", "train",
                 "--query-view-file", f"llm={rewrites}", "--cache", cache]) == 0
    key = capsys.readouterr().out.split("teacher ")[1].split()[0].rstrip(":,")
    c = ScoreCache(cache)
    members = c.describe(key)["members"]
    assert [c.describe(m)["query_view"] for m in members] == ["manual", "llm"]
    assert main(["score", "--teacher", f"bi-encoder:{tiny_model_dir}", "--run", run, "--dataset", folder, "--split", "train", "--cache",
                 cache]) == 0
    raw_key = capsys.readouterr().out.split("teacher ")[1].split()[0].rstrip(":,")
    assert raw_key not in members  # the view is part of the teacher's key
    by_view = {k: c.read(k, qids=["81_2"]).set_index("docid")["score"] for k in (members[0], raw_key)}
    assert not by_view[members[0]].equals(by_view[raw_key])  # the rewrite is what the teacher read

    # the SPLADE student reads the conversation
    examples = {"teacher": key, "negatives": 2, "query_view": "conversation"}
    cfg = TrainConfig.from_dict({"output": str(tmp_path / "student"), "dataset": folder, "split": "train",
                                 "cache": cache, "student": "splade", "model": tiny_mlm, "examples": examples,
                                 "loss": {"name": "listwise-kl", "student_temperature": 1.0}, "batch_size": 2,
                                 "max_steps": 2, "max_seq_length": 32, "flops": {"query": 1e-3, "document": 1e-3}})
    ds = load_dataset(folder, "train")
    built = build_examples(ds, c, ExampleConfig(**examples))
    row = as_hf_dataset(built, ds, query_view="conversation")[0]
    assert row["query"] == ds.query_texts("conversation")[built[0]["query_id"]] and " [SEP] " in \
        ds.query_texts("conversation")["81_3"]
    final = train(cfg, progress=False)
    assert os.path.exists(os.path.join(final, "config.json"))
    record = json.load(open(tmp_path / "student" / "training.json"))
    assert record["config"]["examples"]["query_view"] == "conversation" and record["inputs"]["query_view"]


def test_bad_query_views_are_named(tmp_path, capsys):
    folder, _ = write_conversations(tmp_path / "cast", tmp_path)
    out = str(tmp_path / "out")
    assert main(["evaluate", "--dataset", folder, "--split", "train", "--query-view", "llm", "--run", "x",
                 "--output", out]) == 2
    assert "no query view 'llm' (has: conversation, manual)" in capsys.readouterr().err
    assert main(["rewrite", "--dataset", folder, "--split", "train", "--llm", "m", "--option", "color=red",
                 "--output", str(tmp_path / "r.jsonl")]) == 2
    assert "--option color: not an option of the rewriter" in capsys.readouterr().err
    assert main(["score", "--teacher", "bm25", "--run", "x", "--dataset", folder, "--split", "train",
                 "--query-view-file", "llm", "--cache", str(tmp_path / "c")]) == 2
    assert "--query-view-file takes NAME=FILE" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cast_recipe_runs_end_to_end_on_a_fixture(tmp_path, tiny_model_dir, tiny_mlm):  # noqa: F811
    """experiments/cast/run.sh as a user runs it (the CLI in fresh processes), two LLM rewriters behind a server."""
    import subprocess
    import sys

    import yaml

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder, _ = write_conversations(tmp_path / "cast", tmp_path)
    recipe = yaml.safe_load(open(os.path.join(root, "experiments", "cast", "splade.yaml")))
    config = tmp_path / "splade.yaml"
    config.write_text(yaml.safe_dump({**recipe, "model": tiny_mlm, "max_steps": 2, "batch_size": 2,
                                      "max_seq_length": 32, "precision": "fp32", "examples": {
                                          **recipe["examples"], "negatives": 2}}))
    work = tmp_path / "work"
    work.mkdir()
    with rewriting_llm() as (url, asked):
        env = {**os.environ, "CAST": folder, "REWRITERS": "first second", "REWRITE_OPTIONS": f"endpoint={url}",
               "TEACHER": f"bi-encoder:{tiny_model_dir}", "CONFIG": str(config), "DEPTH": "6",
               "IRDISTILL": f"{sys.executable} -m irdistill", "IRDISTILL_INDEXES": str(work / "indexes")}
        done = subprocess.run(["bash", os.path.join(root, "experiments", "cast", "run.sh")], cwd=work, env=env,
                              capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(asked) == 10  # 5 turns, 2 rewriters
    teacher = json.loads((work / "runs" / "cast-teacher.json").read_text())
    assert [m["query_view"] for m in teacher["members"]] == ["llm-1", "llm-2"]
    metrics = {name: json.loads((work / "runs" / name / "metrics.json").read_text())["metrics"]
               for name in ("cast-student", "cast-bm25-raw", "cast-bm25-conversation", "cast-bm25-manual")}
    assert all({"ndcg@3", "ndcg@10", "recall@100"} <= set(m) for m in metrics.values())
    # the manual rewrites find the canonical passages that the raw turns miss
    assert metrics["cast-bm25-manual"]["ndcg@3"] > metrics["cast-bm25-raw"]["ndcg@3"]
