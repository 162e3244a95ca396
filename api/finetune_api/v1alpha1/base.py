"""The base class of every spec model and the CEL rules attached to them.

Each model carries its cross-field rules as CEL, the language the kube-apiserver evaluates
(`x-kubernetes-validations`). The same expressions are evaluated locally by `finetune validate`,
so a spec that passes here cannot be rejected by the cluster for a rule we know about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ..redact import WHERE_CREDENTIALS_GO


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry.

    `field` is the camelCase field the message is about, relative to the model carrying the rule;
    it becomes the rule's `fieldPath`, so server errors point at the field rather than its parent.
    """

    rule: str
    message: str
    field: str | None = None
    # FieldValueForbidden: the API server's error then carries no "Invalid value: <the value>" (a secret).
    reason: str | None = None

    @property
    def is_transition(self) -> bool:
        """Rules that read `oldSelf` run only on updates; there is nothing to compare locally."""
        return "oldSelf" in self.rule

    def to_crd(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.field:
            entry["fieldPath"] = f".{self.field}"
            entry["reason"] = "FieldValueInvalid"
        if self.reason:
            entry["reason"] = self.reason
        return entry


def _add_cel_rules(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    rules: tuple[CelRule, ...] = getattr(cls, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [r.to_crd() for r in rules]


class SpecModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected, values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=_add_cel_rules,
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = ()


# Bounds shared by many fields. Every string and list has a bound: the apiserver's CEL cost
# estimator rejects a CRD whose rules could walk unbounded data, and hostile input stays small.
NAME_MAX = 253
URI_MAX = 2048
COLUMN_MAX = 128
LIST_MAX = 64

# A DNS-1123 subdomain / label, as Kubernetes object names are validated.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Column names may hold spaces and punctuation, but never control characters (log and shell safety).
COLUMN_NAME = r"^[^\x00-\x1f\x7f]+$"
# A Kubernetes resource quantity (e.g. 500m, 4, 16Gi).
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# A URL's user[:password]@ part. The schema patterns admit it on purpose: a pattern mismatch makes the
# API server echo the whole value (the password with it), while the NO_CREDENTIALS rule refuses it
# with a message that names only the field.
USERINFO = r"[^\x00-\x20/@]+@"
# A server's http(s) URL: an S3 endpoint, a tracking server.
HTTP_URL = rf"^https?://({USERINFO})?[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/[A-Za-z0-9._~/-]*)?$"
# Where a model, dataset or output lives: s3://bucket/key, a local or mounted path, or (models
# only, enforced elsewhere) a Hub id such as org/name. Control characters are never allowed.
STORAGE_URI = (
    r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]*)?"
    r"|(/|\./|\.\./)?[A-Za-z0-9_~@+=,.-][^\x00-\x1f\x7f:]*"
    rf"|[A-Za-z][A-Za-z0-9+.-]*://{USERINFO}[^\x00-\x1f\x7f]*)$"
)


def cel(*rules: CelRule) -> dict[str, Any]:
    """Field-level rules, for `Field(json_schema_extra=cel(...))`."""
    return {"x-kubernetes-validations": [r.to_crd() for r in rules]}


NO_PARENT_SEGMENTS = CelRule(
    rule="!self.matches('(^|/)[.][.](/|$)')",
    message="must not contain '..' path segments; give the full path to the object",
)
# The message says where credentials belong; as a Forbidden error the API server does not repeat the value.
_WITH_USERINFO = "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/]*@')"
NO_CREDENTIALS = CelRule(
    rule=_WITH_USERINFO,
    message=f"must not carry credentials (user:password@ in the URL); {WHERE_CREDENTIALS_GO}",
    reason="FieldValueForbidden",
)
NO_TRACKING_CREDENTIALS = CelRule(
    rule=_WITH_USERINFO,
    message="must not carry credentials (user:password@ in the URL); put MLFLOW_TRACKING_TOKEN, or "
    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, in a Secret named by spec.tracking.mlflow.secretRef",
    reason="FieldValueForbidden",
)


def applies_only_when(field: str, selector: str, values: tuple[str, ...], where: str) -> CelRule:
    """A rule that `field` may be set only when `selector` is one of `values`.

    `where` is the dotted path of the model carrying the rule, used to name the field in full.
    """
    listed = ", ".join(f"'{v}'" for v in values)
    shown = " or ".join(values)
    return CelRule(
        rule=f"!has(self.{field}) || self.{selector} in [{listed}]",
        message=(
            f"{where}.{field} applies only when {where}.{selector} is {shown}; remove {field} or change {selector}"
        ),
        field=field,
    )
