"""The control plane serves client-go's watch-list streams, as a production one does.

client-go 0.36 informers (kwok's, the kubelet's, the controller manager's) open their watches with
sendInitialEvents. With etcd 3.5.1 the apiserver refused them ("the required storage feature
RequestWatchProgress is disabled"), every informer relisted with growing backoff, and a pod that
kwok should fail after 1.5 s was seen failing a minute later: the operator tier took 12 minutes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.controlplane


def test_a_watch_list_stream_ends_its_initial_events_with_a_bookmark(control_plane: Any) -> None:
    stream = control_plane.kubectl(
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2",
    )
    events = [json.loads(line) for line in stream.splitlines() if line.strip()]
    assert not [e for e in events if e["type"] == "ERROR"], events
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    annotations = [b["object"]["metadata"].get("annotations") or {} for b in bookmarks]
    assert any(a.get("k8s.io/initial-events-end") == "true" for a in annotations), events
