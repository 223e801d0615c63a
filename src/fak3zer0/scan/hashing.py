"""Content hashes: the scanner's identity of a file (renamed or copied files share one)."""
from __future__ import annotations

import hashlib

CHUNK = 1 << 20


def sha256_file(path: str, chunk: int = CHUNK) -> str:
    """SHA-256 of the file's bytes, read in 1 MiB chunks (memory stays flat for any size).

    hashlib releases the GIL on large updates, so several threads hash in parallel.
    """
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def path_key(path: str) -> str:
    """A 64-hex key for a file whose bytes cannot be read (so its failure still gets one row)."""
    return hashlib.sha256(b"unreadable-path\0" + path.encode("utf-8", "surrogateescape")).hexdigest()
