"""Precision follows the hardware: bf16 only where it is native, so a recipe asking for bf16 still trains at fp32
speed on an AVX2-only CPU instead of PyTorch's emulated bf16 (minutes a step)."""

import pytest

from irdistill import precision


@pytest.mark.parametrize("flags, requested, chosen, noted", [
    ({"avx2"}, "bf16", "fp32", True),
    ({"avx2"}, "auto", "fp32", False),
    ({"avx2", "avx512_bf16"}, "bf16", "bf16", False),
    ({"amx_bf16"}, "auto", "bf16", False),
    ({"avx2"}, "fp32", "fp32", False),
])
def test_bf16_only_where_the_cpu_runs_it(monkeypatch, flags, requested, chosen, noted):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    got, note = precision.choose(requested, cuda=False)
    assert got == chosen and bool(note) == noted
    if noted:
        assert "fp32" in note and "avx512_bf16" in note


def test_the_trainer_is_told_the_chosen_precision(monkeypatch, capsys):
    from irdistill.training.train import _device_arguments

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr(precision, "native_bf16", lambda cuda: False)
    args = _device_arguments("bf16")
    assert args["bf16"] is False and args["fp16"] is False
    assert "running in fp32" in capsys.readouterr().err
