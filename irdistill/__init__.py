"""irdistill: knowledge distillation for retrieval and ranking.

The front door for scripts and notebooks (each name imported from its module when first used):

- data: ``load_dataset`` (BEIR or MS MARCO folder, ir_datasets id), ``read_run``, ``write_run``, ``run_from_dict``
- candidates and retrieval: ``candidates`` (a first stage's top k, positives added), ``retrieve``, ``open_index``
- teachers and their cache: ``score_run`` (a teacher spec or Teacher, into a ``ScoreCache``), ``build_teacher``,
  ``sparsify`` (keep K scores a query)
- training: ``TrainConfig`` (from a dict or YAML file), ``train``, ``crossfit``
- evaluation: ``evaluate_run``, ``evaluate_retrieval``, ``compare_runs``
- collections without labels and models: ``adapt`` / ``AdaptConfig``, ``generate_queries``, ``rewrite_queries``,
  ``merge_models``

The README's quickstart from Python::

    import irdistill

    train = irdistill.load_dataset("../shared/datasets/scifact", "train")
    run = irdistill.candidates(train, "bm25", k=30, positives=True, queries=300)
    teacher = irdistill.score_run("bm25", run, train, irdistill.ScoreCache("cache/quickstart")).key
    model = irdistill.train(irdistill.TrainConfig.from_file("experiments/quickstart/train.yaml",
                                                            [f"examples.teacher={teacher}"]))
"""

from .errors import InputError
from .lazy import exports, names_of

__version__ = "0.1.0"
_NAMES = names_of({
    ".data": ["load_dataset", "read_run", "write_run", "run_from_dict"],
    ".index": ["candidates", "retrieve", "open_index"],
    ".teachers": ["score_run", "build_teacher"],
    ".cache": ["ScoreCache", "sparsify"],
    ".training": ["TrainConfig", "train", "crossfit"],
    ".evaluation": ["evaluate_run", "evaluate_retrieval", "compare_runs"],
    ".adapt": ["adapt", "AdaptConfig"],
    ".queries": ["generate_queries"],
    ".queries.rewrite": ["rewrite_queries"],
    ".models.merge": ["merge_models"],
})
__all__ = [*_NAMES, "InputError", "__version__"]
__getattr__ = exports(__name__, _NAMES, globals())


def __dir__():
    return sorted({*globals(), *_NAMES})
