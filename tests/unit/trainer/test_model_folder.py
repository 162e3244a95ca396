"""Model folders and output locations, checked before transformers or training touch them (crafted folders)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from finetune_api.storage_uri import parse_uri
from finetune_trainer.errors import ConfigError, StorageError
from finetune_trainer.storage.store import LocalStore, check_output_location
from finetune_trainer.training.model_files import check_model_folder, check_safetensors, require_tokenizer


def _safetensors(path: Path, data: bytes = b"\0" * 16, end: int = 16) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, end]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def _folder(tmp_path: Path, config: str = '{"model_type": "bert"}') -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(config)
    (folder / "tokenizer.json").write_text("{}")
    _safetensors(folder / "model.safetensors")
    return folder


def test_a_sound_folder_passes(tmp_path: Path) -> None:
    check_model_folder(_folder(tmp_path), "s3://models/m/", trust_remote_code=False)


def test_no_tokenizer_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        require_tokenizer(["config.json", "model.safetensors"], "s3://models/m/")
    assert "has no tokenizer" in err.value.message and "tokenizerUri" in err.value.message
    require_tokenizer(["config.json", "vocab.txt"], "s3://models/m/")
    with pytest.raises(ConfigError):  # from_pretrained would not look in a subfolder
        require_tokenizer(["config.json", "sub/vocab.txt"], "s3://models/m/")


def test_truncated_safetensors(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "model.safetensors", data=b"\0" * 4)
    with pytest.raises(ConfigError) as err:
        check_safetensors(path, "s3://models/m/")
    assert "model.safetensors is not a valid safetensors file" in err.value.message and "truncated" in err.value.message


def test_garbage_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"this is not a tensor file at all")
    with pytest.raises(ConfigError, match="its header claims"):
        check_safetensors(path, "m")


def test_config_that_is_not_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        check_model_folder(_folder(tmp_path, "{model_type: bert"), "s3://models/m/", trust_remote_code=False)
    assert "config.json is not valid JSON" in err.value.message


def test_remote_code_needs_trust(tmp_path: Path) -> None:
    config = json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}})
    folder = _folder(tmp_path, config)
    with pytest.raises(ConfigError) as err:
        check_model_folder(folder, "s3://models/m/", trust_remote_code=False)
    assert "modeling_x.XModel" in err.value.message and "trustRemoteCode" in err.value.message
    check_model_folder(folder, "s3://models/m/", trust_remote_code=True)


def _hub_cache(tmp_path: Path) -> Path:
    """models--org--name/{blobs/<hash>, snapshots/<rev>/<file> -> ../../blobs/<hash>}, as huggingface_hub does."""
    repo = tmp_path / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "blobs" / "f00d").write_text('{"model_type": "bert"}')
    (snapshot / "config.json").symlink_to("../../blobs/f00d")
    return snapshot


def test_hub_cache_links_inside_the_cache_are_followed(tmp_path: Path) -> None:
    store = LocalStore(parse_uri(str(_hub_cache(tmp_path)) + "/"))
    assert [o.key for o in store.list_objects()] == ["config.json"]
    store.download("config.json", tmp_path / "out" / "config.json")
    assert json.loads((tmp_path / "out" / "config.json").read_text()) == {"model_type": "bert"}


def test_links_leaving_the_folder_are_refused(tmp_path: Path) -> None:
    snapshot = _hub_cache(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    (snapshot / "tokenizer.json").symlink_to(outside)
    store = LocalStore(parse_uri(str(snapshot) + "/"))
    with pytest.raises(StorageError) as err:
        store.download("tokenizer.json", tmp_path / "out" / "tokenizer.json")
    assert "is a link to" in err.value.message and "outside" in err.value.message
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x").symlink_to(outside)
    with pytest.raises(StorageError, match="outside"):
        LocalStore(parse_uri(str(plain) + "/")).read_bytes("x")


def test_output_that_is_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "out"
    existing.write_text("")
    with pytest.raises(StorageError) as err:
        check_output_location("spec.output.uri", str(existing) + "/")
    assert "is an existing file, but the output is a folder" in err.value.message
    with pytest.raises(StorageError, match="lies under"):
        check_output_location("spec.output.uri", str(existing / "deeper") + "/")
    check_output_location("spec.output.uri", str(tmp_path / "new" / "folder") + "/")
    check_output_location("spec.output.uri", "s3://bucket/out/")


def test_a_failing_local_write_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStore(parse_uri(str(tmp_path) + "/"))
    (tmp_path / "blocker").write_text("")
    with pytest.raises(StorageError, match="cannot write it"):
        store.write_bytes("blocker/inside.json", b"{}")
