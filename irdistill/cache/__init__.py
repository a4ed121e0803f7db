"""The Parquet cache of teacher scores, and its exports (TREC runs, Margin-MSE teacher files)."""

from .margin_mse import export_margin_mse, import_margin_mse
from .scores import ScoreCache

__all__ = ["ScoreCache", "export_margin_mse", "import_margin_mse"]
