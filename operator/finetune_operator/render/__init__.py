"""Pure functions from a FineTuneJob to the Kubernetes objects that run it. No API calls here."""

from .plan import RenderedObjects, render

__all__ = ["RenderedObjects", "render"]
