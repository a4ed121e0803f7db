"""The precision a job runs in: bf16 only where the hardware runs it natively (a GPU with bf16, or a CPU with
avx512_bf16 or AMX), else fp32. Emulated bf16 is many times slower than fp32 (PyTorch's generic fallback on an
AVX2-only CPU: minutes a training step), so asking for bf16 there gets fp32 and a one-line note."""

from __future__ import annotations

import contextlib
import functools
import sys

NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux: /proc/cpuinfo; elsewhere none known)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(cuda: bool) -> bool:
    """Whether bf16 runs natively where the job runs: the GPU if ``cuda``, else the CPU."""
    if cuda:
        import torch

        return torch.cuda.is_bf16_supported()
    return any(flag in cpu_flags() for flag in NATIVE_CPU_FLAGS)


def choose(requested: str, cuda: bool | None = None) -> tuple[str, str | None]:
    """``(precision, note)``: ``auto`` is bf16 where native, else fp32; ``bf16`` where it is not native is fp32, with
    a note saying so; fp32 and fp16 are as asked.

    >>> choose("fp32")
    ('fp32', None)
    >>> choose("bf16", cuda=False)[0] in ("bf16", "fp32")
    True
    """
    if requested not in ("auto", "bf16"):
        return requested, None
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if native_bf16(cuda):
        return "bf16", None
    where = "this GPU" if cuda else "this CPU (no avx512_bf16 or AMX)"
    note = None if requested == "auto" else f"bf16 is not native on {where}: running in fp32"
    return "fp32", note


def resolve(requested: str, cuda: bool) -> str:
    """``choose``'s precision, its note (if any) said on stderr: what training and encoding both run in."""
    used, note = choose(requested, cuda)
    if note:
        print(f"irdistill: note: {note}", file=sys.stderr)
    return used


# encoding (index, search, evaluate): the CLI runs a job under ``encoding(requested)`` ---------------------------------
_encoding = "fp32"


def encoding_precision() -> str:
    """The precision corpus and query encoders run in now (``fp32`` outside ``encoding``); keys of encodings and indexes
    name it when it is not fp32, so vectors of two precisions never mix."""
    return _encoding


@contextlib.contextmanager
def encoding(requested: str = "auto", workers: int = 1):
    """Run the block's encoders in ``requested`` precision (``choose``: bf16 only where native), through torch's
    autocast (matrix products in bf16, normalisation and softmax in fp32); yields the precision used. Worker
    processes would not inherit autocast, so with ``workers`` > 1 encoding stays fp32."""
    global _encoding
    if requested == "fp32" or workers > 1:
        yield "fp32"
        return
    import torch

    cuda = torch.cuda.is_available()
    used = resolve(requested, cuda)
    if used != "bf16":
        yield used
        return
    saved, _encoding = _encoding, "bf16"
    try:
        with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16):
            yield "bf16"
    finally:
        _encoding = saved
