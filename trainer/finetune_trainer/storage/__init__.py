"""Object storage: s3:// prefixes through boto3, and local or mounted paths, behind one interface."""

from .store import ObjectInfo, Store, open_store

__all__ = ["ObjectInfo", "Store", "open_store"]
