"""A model folder checked before transformers reads it, so each mistake is a ConfigError naming the file.

transformers meets a broken folder deep inside from_pretrained (a corrupt safetensors header, a
config.json that is not JSON, code it may not run) and says so in a traceback; a folder without a
tokenizer may even load some default one. These checks read only headers and small JSON files.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# Any of these is a tokenizer (a fast tokenizer.json, or the vocabulary a slow one is built from).
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "vocab.txt",
        "vocab.json",
        "tokenizer.model",
        "spiece.model",
        "sentencepiece.bpe.model",
        "tiktoken.model",
    }
)
MAX_SAFETENSORS_HEADER = 100 << 20  # the format's own bound


def require_tokenizer(names: list[str], where: str) -> None:
    """`names`: the files of the model folder (relative keys); `where` names the folder in messages.

    Only the folder's own files count: from_pretrained reads no subfolder, so a tokenizer further down
    (another run's output under the same prefix, say) would fail later with a less useful message."""
    if not any(name in TOKENIZER_FILES for name in names):
        listed = ", ".join(sorted(TOKENIZER_FILES))
        raise ConfigError(
            f"{where} has no tokenizer (none of {listed}); save the tokenizer into the model folder "
            "(tokenizer.save_pretrained) or set spec.model.tokenizerUri to a folder holding one"
        )


def _json_object(path: Path, where: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise ConfigError(f"{where}: {path.name} is not valid JSON ({detail}); re-upload the model folder") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {path.name} holds a JSON {type(data).__name__}, not an object; re-upload it")
    return data


def _remote_code(config: dict[str, Any], name: str, where: str, trusted: bool) -> None:
    if "auto_map" in config and not trusted:
        classes = (
            ", ".join(sorted(str(v) for v in config["auto_map"].values()))[:200]
            if isinstance(config["auto_map"], dict)
            else str(config["auto_map"])[:200]
        )
        raise ConfigError(
            f"{where}: {name} asks to run the model's own Python code ({classes}) and spec.model.trustRemoteCode is "
            "false; use a model with a built-in architecture, or review the code and set trustRemoteCode: true"
        )


def check_safetensors(path: Path, where: str) -> None:
    """The header is 8 bytes of length, then JSON whose tensor offsets must lie inside the file."""
    size = path.stat().st_size
    broken = f"{where}: {path.name} is not a valid safetensors file"
    fix = "re-upload it (the upload may have been cut off) or convert the weights again"
    if size < 8:
        raise ConfigError(f"{broken} ({size} bytes); {fix}")
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise ConfigError(f"{broken} (its header claims {length} bytes, the file has {size}); {fix}")
        raw = fh.read(length)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{broken} (its header is not JSON); {fix}") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{broken} (its header is not a JSON object); {fix}")
    data_size = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise ConfigError(f"{broken} (tensor {name!r} lies outside the file: truncated?); {fix}")


def check_model_folder(folder: Path, where: str, trust_remote_code: bool) -> None:
    """config.json, tokenizer_config.json and every *.safetensors of a downloaded model folder."""
    config = folder / "config.json"
    if not config.is_file():
        raise ConfigError(f"{where} has no config.json; upload the whole model folder")
    _remote_code(_json_object(config, where), "config.json", where, trust_remote_code)
    tok_config = folder / "tokenizer_config.json"
    if tok_config.is_file():
        _remote_code(_json_object(tok_config, where), "tokenizer_config.json", where, trust_remote_code)
    for weights in sorted(folder.rglob("*.safetensors")):
        check_safetensors(weights, where)
