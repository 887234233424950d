"""Where uploaded files live. One small interface, so S3 (or any object store) can replace the local disk.

A name is what the database keeps (OfferMedia.path): `ab/<32 hex>.jpg`, random, never chosen by a user.
`LocalMediaStore` writes under `<data_dir>/media/` and is served at `{base}/media/{name}` by the app.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

NAME_RE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}\.(jpg|png|webp)$")
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class MediaStore(Protocol):
    def save(self, data: bytes, mime: str) -> str: ...

    def open(self, name: str) -> bytes: ...

    def delete(self, name: str) -> None: ...

    def url(self, name: str) -> str: ...


def new_name(mime: str) -> str:
    key = secrets.token_hex(16)
    return f"{key[:2]}/{key}.{EXTENSIONS[mime]}"


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


class LocalMediaStore:
    def __init__(self, root: Path, base_url: str) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")

    def path(self, name: str) -> Path:
        if not valid_name(name):
            raise ValueError(f"not a media name: {name!r}")
        return self.root / name

    def save(self, data: bytes, mime: str) -> str:
        """Write atomically (temporary file, then rename) and return the new name."""
        name = new_name(mime)
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return name

    def open(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def delete(self, name: str) -> None:
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            pass

    def url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}"
