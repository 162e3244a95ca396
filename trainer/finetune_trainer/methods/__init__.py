"""Adaptation methods, one module per family, chosen through one registry."""

from .registry import METHODS, Method, get_method

__all__ = ["METHODS", "Method", "get_method"]
