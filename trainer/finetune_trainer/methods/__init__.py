"""Adaptation methods, one module per family, chosen through one registry."""

from .base import Method
from .registry import METHODS, get_method

__all__ = ["METHODS", "Method", "get_method"]
