"""Reading manifest YAML with limits, as strictly as the API server reads the object.

PyYAML alone follows anchors without bound (under a kilobyte of nested aliases expands to billions
of nodes), recurses once per nesting level (a deep file ends in RecursionError), lets a second
`training:` key silently replace the first, and turns `2024-01-01:` into a date key that no
Kubernetes object can hold. Here each of those is refused with the line and the fix, before any
document is built.

Numbers are read as kubectl and the API server read them (YAML 1.2 and JSON): `3e-4` and `1E-3` are floats.
PyYAML follows YAML 1.1, whose floats need a dot, and would hand the schema the string '3e-4'.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 48  # a FineTuneJob nests about ten levels deep
MAX_NODES = 50_000  # after expanding aliases; a FineTuneJob is a few hundred
MAX_ALIASES = 100
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"
_TYPE_OF_TAG = {
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
}


FLOAT_TAG = "tag:yaml.org,2002:float"
# YAML 1.2's floats with an exponent and no dot (those with a dot are YAML 1.1 floats already).
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+|[0-9]*\.[0-9]+)[eE][-+]?[0-9]+$")


class ManifestError(ValueError):
    """A file that is not an acceptable manifest; `fix` says what to change."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past the depth, node and alias limits."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.nodes = 0
        self.aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ManifestError(
                    f"line {mark.line + 1}: more than {MAX_ALIASES} YAML aliases (*name)",
                    "write the values out; a FineTuneJob needs no anchors",
                )
        self.depth += 1
        self.nodes += 1
        if self.depth > MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise ManifestError(f"line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels", "flatten the document")
        if self.nodes > MAX_NODES:
            raise ManifestError(f"more than {MAX_NODES} YAML nodes", "a FineTuneJob manifest has a few hundred")
        try:
            node: Node | None = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        return node


# Tried after the resolvers SafeLoader has: `10` stays an int, `1.5` a float.
_LimitedLoader.add_implicit_resolver(FLOAT_TAG, EXPONENT_FLOAT, list("-+0123456789."))


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Nodes in the document with every alias expanded, without expanding it (memoized per node)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = MAX_NODES + 1  # a cycle (an anchor inside itself) counts as too big
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = min(size, MAX_NODES + 1)
    return memo[id(node)]


def _check_keys(node: Node, seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for child in node.value:
            _check_keys(child, seen)
        return
    if not isinstance(node, MappingNode):
        return
    first_line: dict[str, int] = {}
    for key, value in node.value:
        if key.tag == MERGE_TAG:
            _check_keys(value, seen)
            continue
        if not isinstance(key, ScalarNode):
            raise ManifestError(f"line {_line(key)}: a mapping key is itself a list or mapping", "use a string key")
        if key.tag != STR_TAG:
            kind = _TYPE_OF_TAG.get(key.tag, f"of type {key.tag.rsplit(':', 1)[-1]}")
            raise ManifestError(
                f"line {_line(key)}: key {key.value!r} is read as {kind}, not a string",
                f"quote it: '{key.value}'",
            )
        if key.value in first_line:
            raise ManifestError(
                f"line {_line(key)}: key {key.value!r} appears twice in the same mapping "
                f"(first at line {first_line[key.value]}); the API server refuses duplicate fields",
                "keep one of them",
            )
        first_line[key.value] = _line(key)
        _check_keys(value, seen)


def load_manifest_documents(text: str) -> list[Any]:
    """The non-empty documents of a YAML stream, or ManifestError."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise ManifestError(
            f"larger than {MAX_FILE_BYTES} bytes", "a FineTuneJob manifest is a few KiB; split the file"
        )
    loader = _LimitedLoader(text)
    docs = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if _expanded_size(node, {}) > MAX_NODES:
                raise ManifestError(
                    f"line {_line(node)}: the document expands to more than {MAX_NODES} nodes through its aliases",
                    "write the values out; a FineTuneJob needs no anchors",
                )
            _check_keys(node, set())
            doc = loader.construct_document(node)
            if doc is not None:
                docs.append(doc)
    finally:
        loader.dispose()
    return docs
