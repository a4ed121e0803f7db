"""Collections (corpus, queries, qrels) and runs."""

from .corpus import Corpus
from .dataset import (Dataset, load_beir, load_dataset, load_files, load_ir_datasets, load_msmarco, load_qrels, read_qrels,
                      read_queries)
from .shards import in_shard, parse_shard
from .runs import read_run, run_from_dict, run_to_dict, write_run

__all__ = [
    "Corpus", "Dataset", "load_dataset", "load_beir", "load_files", "load_ir_datasets", "load_msmarco",
    "read_queries", "read_qrels", "load_qrels", "parse_shard", "in_shard", "read_run", "write_run", "run_to_dict", "run_from_dict",
]
