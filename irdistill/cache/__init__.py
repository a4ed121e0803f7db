"""The Parquet cache of teacher scores, its exports (TREC runs, Margin-MSE teacher files) and the importers of
published teacher files (``teacher_files``)."""

from .jsonl_export import export_jsonl
from .margin_mse import export_margin_mse
from .scores import ScoreCache
from .teacher_files import FORMATS, SCALES, import_teacher_file

__all__ = ["FORMATS", "SCALES", "ScoreCache", "export_jsonl", "export_margin_mse", "import_teacher_file"]
