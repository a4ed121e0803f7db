"""Distillation training: examples from the score cache, ranking losses, student adapters, training runs."""

from .examples import ExampleConfig, as_hf_dataset, build_examples
from .losses import make_loss
from .objectives import BiEncoderObjective, CrossEncoderObjective
from .train import TrainConfig, train

__all__ = ["ExampleConfig", "build_examples", "as_hf_dataset", "make_loss", "BiEncoderObjective",
           "CrossEncoderObjective", "TrainConfig", "train"]
