"""The README is what a new user follows: CI runs exactly its setup and test commands, and its contents links lead
to sections that exist."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*path) -> str:
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def block_after(text: str, heading: str) -> list[str]:
    part = text[text.index(heading):]
    return re.search(r"```bash\n(.*?)```", part, re.S).group(1).strip().splitlines()


def test_ci_runs_the_readmes_setup_and_test_commands():
    readme, ci = read("README.md"), read(".ci", "run").strip().splitlines()
    commands = ci[ci.index('cd "$(dirname "$0")/.."') + 1:]
    assert commands == block_after(readme, "## Setup") + block_after(readme, "## Tests")


def anchor(heading: str) -> str:  # GitHub's: lower case, punctuation dropped, spaces to hyphens
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_contents_links_lead_to_sections():
    readme = read("README.md")
    for target, fragment in re.findall(r"\]\(((?:docs/[\w.]+)?)#([\w-]+)\)", readme):
        text = read(target) if target else readme
        headings = {anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
        assert fragment in headings, f"{target or 'README.md'}#{fragment}"


def test_help_lists_the_front_door():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import irdistill; help(irdistill)"], capture_output=True, text=True,
                         env={**os.environ, "PAGER": "cat"}, check=True).stdout
    import irdistill

    assert all(name in out for name in irdistill.__all__ if not name.startswith("_"))


@pytest.mark.slow
def test_the_readmes_python_quickstart_runs(tmp_path, tiny_model_dir):
    """The README's Python block as written, on a toy collection of random words: its dataset and config the only
    changes (a tiny model, two steps)."""
    import subprocess
    import sys

    import yaml
    from conftest import random_collection, write_beir

    docs, queries = random_collection(40, 12, doc_words=12, vocabulary=40)
    qrels = {"train": [(f"q{i}", f"d{i}", 1) for i in range(8)], "test": [(f"q{i}", f"d{i}", 1) for i in range(8, 12)]}
    beir_dir = write_beir(tmp_path / "toy", docs, queries, qrels)

    code = re.search(r"```python\n(.*?)```", read("README.md"), re.S).group(1)
    config = yaml.safe_load(read("experiments", "quickstart", "train.yaml"))
    config.update(dataset=beir_dir, model=tiny_model_dir, max_steps=2, batch_size=2, max_seq_length=32)
    os.makedirs(tmp_path / "experiments" / "quickstart")
    (tmp_path / "experiments" / "quickstart" / "train.yaml").write_text(yaml.safe_dump(config))
    code = code.replace('"../shared/datasets/scifact"', repr(beir_dir)).replace("queries=300", "queries=3")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "IRDISTILL_INDEXES": str(tmp_path / "indexes")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ndcg@10" in done.stdout and os.path.exists(tmp_path / "models" / "quickstart" / "final")
