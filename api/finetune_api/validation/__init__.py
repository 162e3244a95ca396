"""Validation of a FineTuneJob: schema, CEL rules and the deeper checks a schema cannot express.

Every problem is collected and reported together, each with the field path and a fix.
"""

from .problems import Problem, Severity
from .validate import ValidationResult, validate_document, validate_file

__all__ = ["Problem", "Severity", "ValidationResult", "validate_document", "validate_file"]
