"""Object storage: s3:// prefixes through boto3, and local or mounted paths, behind one interface."""

from .factory import open_store
from .store import ObjectInfo, Store

__all__ = ["ObjectInfo", "Store", "open_store"]
