"""Decide what a file is from its first bytes, not its name."""
from __future__ import annotations

from pathlib import Path

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
_NOT_MEDIA = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7z archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"{\\rtf", "an RTF document"),
)


def sniff(path: str | Path) -> str:
    """Return ``"image:<fmt>"``, ``"maybe-video"``, ``"empty"`` or ``"not-media:<what>"``."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "empty"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image:webp"
    for magic, fmt in _IMAGE_MAGIC:
        if head.startswith(magic):
            return f"image:{fmt}"
    for magic, what in _NOT_MEDIA:
        if head.startswith(magic):
            return f"not-media:{what}"
    if _looks_like_text(head):
        return "not-media:a text file"
    return "maybe-video"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)
