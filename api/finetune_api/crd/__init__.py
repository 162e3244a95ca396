"""The CustomResourceDefinition, generated from the typed spec."""

from .generate import build_crd, render_crd_yaml

__all__ = ["build_crd", "render_crd_yaml"]
