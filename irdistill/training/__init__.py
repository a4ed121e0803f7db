"""Distillation training: examples from the score cache, ranking losses, student architectures, training runs."""

from .config import TrainConfig
from .crossfit import crossfit
from .examples import ExampleConfig, as_hf_dataset, build_examples
from .losses import make_loss
from .students import STUDENTS, Student, get_student, register_student
from .train import train

__all__ = ["ExampleConfig", "build_examples", "as_hf_dataset", "make_loss", "TrainConfig", "train", "crossfit",
           "STUDENTS", "Student", "get_student", "register_student"]
