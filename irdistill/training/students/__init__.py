"""Student architectures, one file each, registered by name in ``base.STUDENTS``."""

from .base import STUDENTS, Objective, Student, get_student, register_student
from .bi_encoder import BiEncoderObjective, BiEncoderStudent
from .colbert import ColbertStudent, MultiVectorObjective
from .cross_encoder import CrossEncoderObjective, CrossEncoderStudent
from .splade import SparseObjective, SpladeStudent

__all__ = ["STUDENTS", "Student", "Objective", "get_student", "register_student", "BiEncoderStudent",
           "CrossEncoderStudent", "ColbertStudent", "SpladeStudent", "BiEncoderObjective", "CrossEncoderObjective",
           "MultiVectorObjective", "SparseObjective"]
