"""irdistill: knowledge distillation for retrieval and ranking."""

from .data import load_dataset
from .errors import InputError

__version__ = "0.1.0"
__all__ = ["load_dataset", "InputError", "__version__"]
