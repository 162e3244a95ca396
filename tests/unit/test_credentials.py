"""A URL's user:password@ is refused where credentials belong elsewhere, and blanked wherever it is printed."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from finetune_api.redact import RedactingFilter, has_userinfo, redact
from finetune_api.validation import validate_document

REPO = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = yaml.safe_load((REPO / "examples" / "tweets-lora.yaml").read_text())
SECRET = "hunter2"


def _doc(**spec: Any) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    for dotted, value in spec.items():
        *parents, leaf = dotted.split("__")
        node = doc["spec"]
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("s3__endpoint", "spec.s3.endpoint"),
        ("output__uri", "spec.output.uri"),
        ("model__uri", "spec.model.uri"),
        ("dataset__train", "spec.dataset.train"),
        ("output__checkpointUri", "spec.output.checkpointUri"),
    ],
)
def test_userinfo_is_refused_saying_where_credentials_go_without_echoing_it(field: str, path: str) -> None:
    url = {
        "s3__endpoint": f"http://minio:{SECRET}@minio.local:9000",
        "dataset__train": f"s3://ak:{SECRET}@data/train.csv",
    }.get(field, f"s3://ak:{SECRET}@models/x/")
    result = validate_document(_doc(**{field: url}))
    rendered = " ".join(p.render() for p in result.errors)
    assert any(p.path == path and p.source == "cel" for p in result.errors), rendered
    assert "spec.s3.secretRef" in rendered and "ServiceAccount" in rendered
    assert SECRET not in rendered


def test_the_crd_carries_the_rule_for_the_api_server() -> None:
    crd = (REPO / "crds" / "finetunejob.yaml").read_text()
    assert crd.count("must not carry credentials") >= 6


def test_redact() -> None:
    assert (
        redact(f"cannot reach http://u:{SECRET}@h:9000/x and s3://a@b/c")
        == "cannot reach http://***@h:9000/x and s3://***@b/c"
    )
    assert redact("user@example.com and s3://bucket/key@v") == "user@example.com and s3://bucket/key@v"
    assert has_userinfo("https://u@h/") and not has_userinfo("https://h/@x")


def test_log_records_are_redacted() -> None:
    record = logging.LogRecord("t", logging.ERROR, "f", 1, "endpoint %s failed", (f"http://u:{SECRET}@h/",), None)
    RedactingFilter().filter(record)
    assert SECRET not in record.getMessage()


def test_trainer_messages_and_termination_log_are_redacted(tmp_path: Path) -> None:
    from finetune_api.v1alpha1.enums import FailureClass
    from finetune_trainer.errors import StorageError, write_termination_message

    assert SECRET not in StorageError(f"listing s3://b/ at http://u:{SECRET}@h/: refused").message
    log = tmp_path / "term"
    write_termination_message(FailureClass.INTERNAL_ERROR, f"ValueError: http://u:{SECRET}@h/", str(log))
    assert SECRET not in log.read_text() and "***@h" in json.loads(log.read_text())["message"]


def test_aws_endpoint_url_with_credentials_is_refused_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_trainer.errors import ConfigError
    from finetune_trainer.storage import open_store

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://u:{SECRET}@127.0.0.1:9/")
    with pytest.raises(ConfigError) as err:
        open_store("s3://bucket/x/")
    assert "AWS_ENDPOINT_URL" in err.value.message and SECRET not in err.value.message
    assert "spec.s3.secretRef" in err.value.message


def test_operator_status_and_events_are_redacted() -> None:
    from finetune_operator.kube import KubeApi

    sent: list[Any] = []
    api = KubeApi(api_client=object())  # type: ignore[arg-type]
    api.request = lambda method, path, **kw: sent.append(kw.get("body"))  # type: ignore[method-assign]
    api.patch_status("ns", "job", {"failure": {"message": f"s3 at http://u:{SECRET}@h/ refused"}})
    assert SECRET not in json.dumps(sent) and "***@h" in json.dumps(sent)
    api.events.record = lambda obj, t, reason, message: sent.append(message)  # type: ignore[method-assign]
    api.record_event({}, "Warning", "Failed", f"http://u:{SECRET}@h/")
    assert sent[-1] == "http://***@h/"
