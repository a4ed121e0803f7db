"""The precision a job runs in: bf16 only where the hardware runs it natively (a GPU with bf16, or a CPU with
avx512_bf16 or AMX), else fp32. Emulated bf16 is many times slower than fp32 (PyTorch's generic fallback on an
AVX2-only CPU: minutes a training step), so asking for bf16 there gets fp32 and a one-line note."""

from __future__ import annotations

import functools

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
