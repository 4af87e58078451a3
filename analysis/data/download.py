"""Checksummed downloads written atomically (temporary name, then rename)."""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import WorkbenchError


@functools.cache
def new_file_mode() -> int:
    """0o666 less the process umask, the mode ``open`` gives; ``mkstemp``'s 0o600 is meant for secrets."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(urls: list[str], destination: Path, md5: str, timeout: float = 30.0) -> Path:
    """Fetch the first reachable of ``urls`` into ``destination`` and verify its MD5.

    The file appears under its final name only once complete and verified.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        handle, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            actual = md5sum(tmp)
            if actual != md5:
                errors.append(f"{url}: checksum {actual} != expected {md5}")
                continue
            tmp.chmod(new_file_mode())
            tmp.replace(destination)
            return destination
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(f"{url}: {getattr(err, 'reason', err)}")
        finally:
            tmp.unlink(missing_ok=True)
    raise WorkbenchError(f"could not download {destination.name}: " + "; ".join(errors))
