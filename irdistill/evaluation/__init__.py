"""Evaluation with ranx: metrics of a run, and paired significance tests between runs; one table over several
datasets (``suite``); an HTML page of figures about runs (``report_page``)."""

from .metrics import compare_runs, evaluate_run, format_table, parse_metrics
from .report_page import write_report
from .suite import evaluate_suite, format_suite

__all__ = ["compare_runs", "evaluate_run", "format_table", "parse_metrics", "write_report", "evaluate_suite",
           "format_suite"]
