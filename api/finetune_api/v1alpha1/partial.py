"""Override models: a spec section with every field optional, for variants that change a few of them.

Generated from the section's own model, so bounds, enums and descriptions stay in one place. The
section's cross-field rules are left out on purpose: a partial override cannot satisfy them alone;
the merged FineTuneJob each variant becomes is validated in full instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, create_model

from .base import SpecModel


def partial(model: type[SpecModel], name: str, doc: str, exclude: frozenset[str] = frozenset()) -> type[SpecModel]:
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if field_name in exclude:
            continue
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        fields[field_name] = (
            annotation | None,
            Field(default=None, description=info.description, json_schema_extra=info.json_schema_extra),
        )
    built: type[SpecModel] = create_model(name, __base__=SpecModel, __doc__=doc, **fields)
    return built
