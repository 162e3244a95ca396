"""docs/spec-reference.md, generated from the same schema as the CRD (so it cannot drift)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .generate import RESOURCES


def _rows(node: dict[str, Any], path: str, required: bool) -> Iterator[str]:
    kind = node.get("type", "object")
    if kind == "array":
        kind = f"list of {node['items'].get('type', 'object')}"
    if "enum" in node:
        kind = " \\| ".join(f"`{v}`" for v in node["enum"])
    default = f"`{node['default']}`" if "default" in node and node["default"] != {} else ""
    bounds = [f"{k} {node[k]}" for k in ("minimum", "maximum", "maxLength", "maxItems") if k in node]
    desc = node.get("description", "").replace("\n", " ").replace("|", "\\|")
    req = "yes" if required else ""
    yield f"| `{path}` | {kind} | {req} | {default} | {desc} {'(' + ', '.join(bounds) + ')' if bounds else ''} |"
    children = node.get("properties") or node.get("items", {}).get("properties") or {}
    needed = set(node.get("required") or node.get("items", {}).get("required") or [])
    suffix = "[]" if node.get("type") == "array" else ""
    for name, sub in children.items():
        yield from _rows(sub, f"{path}{suffix}.{name}", name in needed)


TITLES = {
    "job": ("FineTuneJob", "ftj", "spec-reference.md"),
    "experiment": ("FineTuneExperiment", "ftx", "experiment-reference.md"),
}


def render_reference(resource: str = "job") -> str:
    root = RESOURCES[resource]()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    kind, short, _ = TITLES[resource]
    flag = "" if resource == "job" else f" --resource {resource}"
    lines = [
        f"# {kind} spec reference (finetune.dev/v1alpha1)",
        "",
        f"Generated from `api/finetune_api/v1alpha1` by `finetune reference{flag}`; a test keeps it current.",
        f"`kubectl explain {short}.spec.<field>` shows the same text on a cluster.",
        "",
        "## Rules across fields",
        "",
    ]
    for where, node in _with_rules(root, ""):
        for rule in node["x-kubernetes-validations"]:
            lines.append(f"- `{where or '(object)'}`: {rule['message']}")
    for section in ("spec", "status"):
        lines += [
            "",
            f"## {section}",
            "",
            "| field | type | required | default | description |",
            "|---|---|---|---|---|",
        ]
        lines += list(_rows(root["properties"][section], section, section == "spec"))
    return "\n".join(lines) + "\n"


def _with_rules(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if node.get("x-kubernetes-validations"):
        yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _with_rules(sub, f"{path}.{name}" if path else name)
