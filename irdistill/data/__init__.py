"""Collections (corpus, queries, qrels) and runs."""

from .corpus import Corpus
from .dataset import Dataset, load_beir, load_dataset, load_files, load_ir_datasets, load_msmarco, read_qrels, read_queries
from .runs import read_run, run_from_dict, run_to_dict, write_run

__all__ = [
    "Corpus", "Dataset", "load_dataset", "load_beir", "load_files", "load_ir_datasets", "load_msmarco",
    "read_queries", "read_qrels", "read_run", "write_run", "run_to_dict", "run_from_dict",
]
