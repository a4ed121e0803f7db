"""Progress bars for long steps (encoding, indexing, scoring, training), with rate and ETA: shown when stderr is a
terminal, never under ``quiet()`` (the CLI's ``--quiet``), so logs and piped output stay clean."""

from __future__ import annotations

import os

from tqdm.auto import tqdm

_quiet = False


def quiet() -> None:
    """Silence every progress bar of this process: ours, and those of transformers, datasets and the hub."""
    global _quiet
    _quiet = True
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        import datasets
        import transformers

        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()
    except ImportError:
        pass


def bar(iterable=None, show: bool = True, **options) -> tqdm:
    """A tqdm bar (``desc``, ``total``, ``unit``...) unless ``show`` is False or the process is quiet; by default only
    on a terminal."""
    return tqdm(iterable, disable=True if _quiet or not show else None, **options)


def shown(show: bool = True) -> bool:
    """Whether a bar would show: for libraries that take a flag (the trainers' ``disable_tqdm``)."""
    import sys

    return show and not _quiet and sys.stderr.isatty()
