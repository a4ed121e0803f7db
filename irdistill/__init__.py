"""irdistill: knowledge distillation for retrieval and ranking."""

from .errors import InputError
from .lazy import exports

__version__ = "0.1.0"
__all__ = ["load_dataset", "InputError", "__version__"]
__getattr__ = exports(__name__, {"load_dataset": ".data"}, globals())
