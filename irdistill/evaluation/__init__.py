"""Evaluation with ranx: metrics of a run, paired significance tests between runs, evaluated retrievals written to
disk, one table over several datasets (``suite``) and an HTML page of figures about runs (``report_page``)."""

from .evaluate import evaluate_retrieval, save_evaluation
from .metrics import compare_run_files, compare_runs, evaluate_run, format_table, parse_metrics
from .report_page import write_report
from .suite import evaluate_suite, format_suite

__all__ = ["compare_run_files", "compare_runs", "evaluate_run", "evaluate_retrieval", "format_table", "parse_metrics",
           "save_evaluation", "write_report", "evaluate_suite", "format_suite"]
