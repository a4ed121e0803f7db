"""benchmarks/bench_scale.py's verdict: growth exponents between the two largest sizes, on wall and CPU seconds, and
the memory budget at the largest (the table is what docs/benchmarks.md shows)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_scale", os.path.join(ROOT, "benchmarks", "bench_scale.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
SIZES = [100_000, 1_000_000]


def results(**stages):
    """``stage=(wall at 100k, wall at 1M, cpu at 100k, cpu at 1M, MB at 1M)``."""
    out = {}
    for name, (w1, w2, c1, c2, mb) in stages.items():
        out[f"100000/{name}"] = {"seconds": w1, "cpu": c1, "peak_mb": 500}
        out[f"1000000/{name}"] = {"seconds": w2, "cpu": c2, "peak_mb": mb}
    return out


def test_linear_growth_passes():
    rows, checks = bench.table(results(encode=(10, 100, 8, 80, 900)), SIZES)
    assert rows[0]["exp 100k-1M"] == "1.00" and rows[0]["cpu exp 100k-1M"] == "1.00"
    assert len(checks) == 1 and checks[0].startswith("PASS")


def test_faster_than_linear_growth_fails_on_cpu_time_and_only_notes_a_loaded_wall_clock():
    _, checks = bench.table(results(encode=(10, 200, 8, 160, 900)), SIZES)
    assert checks == ["FAIL: encode grows with exponent 1.30 > 1.1 from 100k to 1M (CPU seconds; wall 1.30)"]
    _, checks = bench.table(results(encode=(20, 100, 8, 160, 900)), SIZES)  # CPU time grew, a quieter wall clock hid it
    assert checks == ["FAIL: encode grows with exponent 1.30 > 1.1 from 100k to 1M (CPU seconds; wall 0.70)"]
    _, checks = bench.table(results(encode=(10, 200, 8, 80, 900)), SIZES)  # the wall clock alone: other jobs' load
    assert checks[0].startswith("NOTE: encode's wall time grows with exponent 1.30") and checks[1].startswith("PASS")


def test_search_per_query_is_exempt_and_memory_has_a_budget():
    budget = 4096 + 1_000_000 * bench.DIM * 4 / 2**20
    _, checks = bench.table(results(**{"search-flat": (1, 100, 1, 100, 900)}), SIZES)
    assert checks[0].startswith("PASS")
    _, checks = bench.table(results(encode=(10, 100, 8, 80, budget + 1)), SIZES)
    assert checks == [f"FAIL: encode peaks at {budget + 1:.0f} MB > {budget:.0f} MB at 1M"]
