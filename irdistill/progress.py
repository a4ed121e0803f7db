"""Progress bars for long steps (encoding, indexing, scoring, training), with rate and ETA: shown when stderr is a
terminal, never under ``quiet()`` (the CLI's ``--quiet``), so logs and piped output stay clean."""

from __future__ import annotations

import contextlib
import functools
import os
import sys

from tqdm import std
from tqdm.auto import tqdm

_quiet = False


def quiet() -> None:
    """Silence every progress bar of this process: ours, and those of transformers, datasets and the hub."""
    global _quiet
    if _quiet:
        return
    _quiet = True
    os.environ["TQDM_DISABLE"] = "1"  # for child processes; tqdm reads it when imported, so in this one:
    std.tqdm.__init__ = functools.partialmethod(std.tqdm.__init__, disable=True)  # bars without a disable flag too
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    library_bars_off()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


def library_bars_off() -> None:
    """Silence the bars transformers and the hub draw on their own ("Loading weights 103/103" before every job): read
    from the environment when they are imported, so light verbs do not import them to say so."""
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    elif "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def bar(iterable=None, show: bool = True, **options) -> tqdm:
    """A tqdm bar (``desc``, ``total``, ``unit``...) unless ``show`` is False or the process is quiet; by default only
    on a terminal."""
    return tqdm(iterable, disable=True if _quiet or not show else None, **options)


def shown(show: bool = True) -> bool:
    """Whether a bar would show: for libraries that take a flag (the trainers' ``disable_tqdm``)."""
    import sys

    return show and not _quiet and sys.stderr.isatty()


def step(text: str, show: bool = True) -> None:
    """One line on stderr naming a step that draws no bar (loading a model, scoring a run, writing files), where a bar
    would show: so a terminal is never silent for long without saying why."""
    if shown(show):
        print(text, file=sys.stderr, flush=True)


def chunks(items: list, size: int, show: bool = True, **options):
    """``items`` in slices of ``size``, under a bar that advances as the caller finishes each slice (for steps that
    work a batch at a time, such as searching many queries)."""
    with bar(total=len(items), show=show, **options) as b:
        for start in range(0, len(items), size):
            part = items[start : start + size]
            yield part
            b.update(len(part))


@contextlib.contextmanager
def library_bars(show: bool):
    """Within the block, the bars that libraries draw on their own (transformers loading and saving weights,
    sentence-transformers' model card) show only if ``show``; they come back after it."""
    if show or _quiet:
        yield
        return
    from transformers.utils import logging

    init, was_on = std.tqdm.__init__, logging.is_progress_bar_enabled()
    std.tqdm.__init__ = functools.partialmethod(init, disable=True)  # a bar asked with no disable flag: off
    if was_on:
        logging.disable_progress_bar()
    try:
        yield
    finally:
        std.tqdm.__init__ = init
        if was_on:
            logging.enable_progress_bar()
