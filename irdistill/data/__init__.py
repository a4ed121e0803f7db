"""Collections (corpus, queries, qrels) and runs (each name imported from its module when first used)."""

from ..lazy import exports, names_of

_NAMES = names_of({
    ".corpus": ["Corpus"],
    ".dataset": ["Dataset", "load_beir", "load_dataset", "load_files", "load_ir_datasets", "load_msmarco", "load_qrels",
                 "read_qrels", "read_queries"],
    ".shards": ["in_shard", "parse_shard"],
    ".runs": ["read_run", "run_from_dict", "run_to_dict", "write_run"],
})
__all__ = list(_NAMES)
__getattr__ = exports(__name__, _NAMES, globals())
