"""irdistill report: the page's numbers, and the page itself opened in a real headless Chromium (every figure renders,
the console stays clean)."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import write_beir
from irdistill.cache import ScoreCache
from irdistill.cli import main
from irdistill.data import run_from_dict, write_run
from irdistill.evaluation.report_page import metrics_table, per_query, run_names, write_report
from irdistill.errors import InputError

N_QUERIES, N_DOCS = 20, 30


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """20 queries over 30 documents (one relevant each), a weak and a strong run, a cached teacher, two training
    folders."""
    work = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    docs = {f"d{i}": (f"t{i}", f"text {i}") for i in range(N_DOCS)}
    queries = {f"q{i}": f"query {i}" for i in range(N_QUERIES)}
    qrels = {"test": [(f"q{i}", f"d{i}", 1) for i in range(N_QUERIES)]}
    folder = write_beir(work / "toy", docs, queries, qrels)
    weak = {q: {d: float(rng.random()) for d in docs} for q in queries}
    strong = {q: {d: float(rng.random()) + (2.0 if d == f"d{q[1:]}" and int(q[1:]) % 4 else 0.0) for d in docs} for q in queries}
    runs = {"bm25": run_from_dict(weak), "student": run_from_dict(strong)}
    for name, run in runs.items():
        write_run(run, work / "runs" / name / "run.trec", tag=name)
    cache = ScoreCache(work / "cache")
    cache.register("t1", {"kind": "fake"})
    pairs = runs["student"]
    cache.write("t1", pairs.qid, pairs.docid, pairs.score * 2 + rng.normal(0, 0.3, len(pairs)))
    training = []
    for name, rate in [("infonce", 0.9), ("kl", 0.8)]:
        out = work / "train" / name
        out.mkdir(parents=True)
        with open(out / "loss.jsonl", "w") as f:
            for step in range(1, 21):
                f.write(json.dumps({"loss": 3 * rate ** step, "step": step}) + "\n")
            f.write(json.dumps({"eval_dev_cosine_ndcg@10": 0.5 + 0.1 * rate, "step": 20}) + "\n")
        training.append(str(out))
    return work, folder, {q: {f"d{q[1:]}": 1} for q in queries}, runs, training


def test_metrics_table_and_deltas(setting):
    work, folder, qrels, runs, training = setting
    rows = metrics_table(qrels, runs, "bm25", ["ndcg@10", "mrr@10"])
    assert [r["run"] for r in rows] == ["bm25", "student"]
    assert "ndcg@10 p" not in rows[0] and 0 <= rows[1]["ndcg@10 p"] < 0.05  # 15 of 20 queries put first: significant
    assert rows[1]["ndcg@10"] > rows[0]["ndcg@10"]
    delta = per_query(qrels, runs["student"], "mrr@10") - per_query(qrels, runs["bm25"], "mrr@10")
    assert len(delta) == N_QUERIES and (delta > 0).sum() >= 15
    assert rows[1]["mrr@10 W/T/L"].startswith(f"{(delta > 0).sum()}/")


def test_run_names():
    assert list(run_names(["runs/a/run.trec", "x/b.parquet", "y/b.parquet"])) == ["a", "b", "y/b.parquet"]


def test_bad_baseline_and_teacher(setting, tmp_path):
    work, folder, qrels, runs, training = setting
    with pytest.raises(InputError, match="baseline"):
        write_report(tmp_path, qrels, runs, baseline="nope")
    with pytest.raises(InputError, match="no scores"):
        write_report(tmp_path, qrels, runs, cache=ScoreCache(work / "cache"), teachers=["absent"])


def _chromium():
    """Debian's chromium and chromedriver driven by selenium, headless, with a fresh profile."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are missing (the README's setup command installs them)")
        pytest.skip("no chromium/chromedriver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]:
        options.add_argument(flag)
    return webdriver, options, Service(executable_path=driver)


def test_report_renders_in_a_browser(setting, tmp_path):
    work, folder, qrels, runs, training = setting
    out = tmp_path / "page"
    assert main(["report", str(work / "runs/bm25/run.trec"), str(work / "runs/student/run.trec"), "--dataset", folder,
                 "--baseline", "bm25", "--cache", str(work / "cache"), "--teacher", "t1", "--training", training[0],
                 "--training", training[1], "--output", str(out)]) == 0
    pngs = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert pngs == ["deltas.png", "loss.png", "recall.png", "teacher_scores.png", "teacher_vs_run.png"]
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "student" in page

    webdriver, options, service = _chromium()
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_window_size(1280, 900)
        driver.get((out / "index.html").as_uri())
        sections = driver.execute_script("""
            const main = document.querySelector('main').clientWidth;
            return Array.from(document.querySelectorAll('section')).map(s => ({
                id: s.id, heading: s.querySelector('h2').textContent,
                explained: s.querySelector('.explain').textContent.length,
                images: Array.from(s.querySelectorAll('img')).map(i => ({
                    natural: i.complete ? i.naturalWidth : 0, shown: i.getBoundingClientRect().width / main})),
                font: parseFloat(getComputedStyle(s).fontSize)}));""")
        logs = driver.get_log("browser")
    finally:
        driver.quit()
    by_id = {s["id"]: s for s in sections}
    assert list(by_id) == ["metrics", "deltas", "recall", "teacher", "training"], list(by_id)
    assert [len(by_id[k]["images"]) for k in by_id] == [0, 1, 1, 2, 1]
    for s in sections:
        assert s["explained"] > 80 and s["font"] >= 16, s  # every section says how to read it, at a readable size
        for image in s["images"]:  # rendered, drawn at the page's width (fonts stay legible), filling it
            assert image["natural"] >= 1000 and image["shown"] > 0.85, (s["id"], image)
    assert "wins over, ties with, or loses to" in page  # W/T/L explained
    assert [entry for entry in logs if entry["level"] in ("SEVERE", "WARNING")] == []


def test_a_run_that_ties_the_baseline_everywhere_gets_a_note_not_an_empty_plot(setting, tmp_path):
    work, folder, qrels, runs, training = setting
    path = write_report(tmp_path / "page", qrels, {"bm25": runs["bm25"], "same": runs["bm25"].copy()})
    page = open(path).read()
    assert "same ties the baseline on every query" in page
    assert not os.path.exists(tmp_path / "page" / "deltas.png") and page.count("<img") == 1  # recall only
