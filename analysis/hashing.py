"""Stable short hashes of JSON-ready values: the one way cache keys and file names are made."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

HASH_VERSION = 2  # bump when a cached artefact's meaning changes


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses (at any depth) turned into dicts and tuples into lists, as JSON stores it."""
    return json.loads(json.dumps(value, sort_keys=True, default=_plain))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def stable_hash(value: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of ``value`` (with the hash version), cut to ``length`` hex digits."""
    payload = json.dumps({"version": HASH_VERSION, "value": jsonable(value)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]
