"""Evaluation with ranx: metrics of a run, paired significance tests between runs, and evaluated retrievals."""

from .evaluate import evaluate_retrieval, save_evaluation
from .metrics import compare_run_files, compare_runs, evaluate_run, format_table, parse_metrics

__all__ = ["compare_run_files", "compare_runs", "evaluate_run", "evaluate_retrieval", "format_table", "parse_metrics",
           "save_evaluation"]
