"""Write generated tables into Markdown files between markers, so docs hold only numbers that scripts produced."""

from __future__ import annotations

import os
import platform
import re

from .data.io import atomic_path


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions(*packages: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in packages:
        try:
            out.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def write_section(path, name: str, text: str) -> None:
    """Replace the text between ``<!-- name -->`` and ``<!-- /name -->`` in ``path`` (appending the block if absent)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + ("\n\n" if old else "") + block + "\n"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(new)


def resumable_rows(names, wanted, results_dir, run_row, configs: dict | None = None) -> list[dict]:
    """Run each ``wanted`` row that ``results_dir/<row>.json`` does not hold yet for its current config
    (``configs[row]``; a changed config runs the row again), storing it atomically with that config; return the
    stored results of ``names`` in order (rows never run are left out)."""
    import json

    configs = configs or {}
    os.makedirs(results_dir, exist_ok=True)
    path = lambda row: os.path.join(results_dir, f"{row}.json")
    stored = lambda row: json.load(open(path(row))) if os.path.exists(path(row)) else None
    for row in wanted:
        old = stored(row)
        if old is None or old.get("config") != configs.get(row):
            result = {**run_row(row), "config": configs.get(row)}
            with atomic_path(path(row)) as tmp, open(tmp, "w") as f:
                json.dump(result, f, indent=1)
            print(f"{row}: {json.dumps(result)}", flush=True)
    return [r for r in map(stored, names) if r is not None]


def timed(fn, repeat: int = 3):
    """``(best seconds of repeat runs, the last result)``."""
    import time

    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def publish_benchmark(section: str, script: str, packages, notes: list[str], rows: list[dict], write=None) -> str:
    """Print a benchmark's table with the machine and versions, and write it into ``write`` (Markdown) if given."""
    from .evaluation.metrics import format_table

    text = "\n".join([f"Machine: {machine()}", f"Versions: {versions(*packages)}", *notes, "", "```",
                      format_table(rows), "```"])
    print(text)
    if write:
        write_section(write, section, f"Command: `python {script} --write {write}`\n\n{text}")
    return text
