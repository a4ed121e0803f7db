"""Evaluation with ranx: metrics of a run, and paired significance tests between runs."""

from .metrics import compare_runs, evaluate_run, format_table, parse_metrics

__all__ = ["compare_runs", "evaluate_run", "format_table", "parse_metrics"]
