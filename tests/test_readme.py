"""The README is what a new user follows: CI runs exactly its setup and test commands, and its contents links lead
to sections that exist."""

import os
import re

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
