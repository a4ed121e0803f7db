"""The Parquet cache of teacher scores, its exports (TREC runs, Margin-MSE teacher files) and the importers of
published teacher files (``teacher_files``), sparse entries (``sparse``); each name imported from its module when first used."""

from ..lazy import exports, names_of

_NAMES = names_of({".jsonl_export": ["export_jsonl"], ".margin_mse": ["export_margin_mse"], ".scores": ["ScoreCache"],
                   ".sparse": ["sparsify"],
                   ".teacher_files": ["FORMATS", "SCALES", "import_teacher_file"]})
__all__ = list(_NAMES)
__getattr__ = exports(__name__, _NAMES, globals())
