"""What each download was checked against, for the manifest's lineage: an output says not only which
inputs it came from but how sure the trainer was that it read them whole."""

from __future__ import annotations

import threading


class Verified:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._how: dict[str, str] = {}  # s3:// URI -> what its bytes were checked against

    def record(self, uri: str, how: str) -> None:
        with self._lock:
            self._how[uri] = how

    def under(self, *prefixes: str | None) -> dict[str, str]:
        """The downloads under any of these locations (a model folder, a data file), sorted by URI."""
        wanted = [p for p in prefixes if p]
        with self._lock:
            return {uri: how for uri, how in sorted(self._how.items()) if any(uri.startswith(p) for p in wanted)}


VERIFIED = Verified()  # one per process: every store's downloads, for whichever run publishes
