"""Where uploaded files live. One small interface, so S3 (or any object store) can replace the local disk.

A name is what the database keeps (OfferMedia.path): `ab/<32 hex>.jpg`, random, never chosen by a user.
`LocalMediaStore` writes under `<data_dir>/media/`; the app serves it at `{base}/media/{name}`
(web/api_offer_media.serve_media), the URL offers_to_ap.media_url gives. An object store would change those two
places: its files are served, and found, at its own address.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

NAME_RE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}\.(jpg|png|webp)$")
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MIME_TYPES = {extension: mime for mime, extension in EXTENSIONS.items()}


class MediaStore(Protocol):
    def save(self, data: bytes, mime: str) -> str: ...

    def delete(self, name: str) -> None: ...


def new_name(mime: str) -> str:
    key = secrets.token_hex(16)
    return f"{key[:2]}/{key}.{EXTENSIONS[mime]}"


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


class LocalMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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

    def delete(self, name: str) -> None:
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            pass
