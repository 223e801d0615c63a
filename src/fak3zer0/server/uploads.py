"""Streaming ``multipart/form-data`` reader for uploads.

The body is parsed as it arrives: the ``file`` part goes straight to a temporary file in the
server's data folder while its sha256 is computed and its bytes are counted; past the limit the
read stops at once (:class:`UploadTooLarge`) and the partial file is removed. Nothing is buffered
in memory beyond one network chunk, and the client's file name is kept for display only.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

#: Form fields other than the file: at most this many, each at most this many bytes.
MAX_FIELDS = 8
MAX_FIELD_BYTES = 1024
FILE_FIELD = "file"


class UploadTooLarge(Exception):
    """The body or the file is over the size limit."""


class BadForm(Exception):
    """The body is not a usable multipart form; ``field`` names the offending field when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Upload:
    path: Path | None = None
    sha256: str = ""
    size: int = 0
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.path = None


def display_name(raw: str | None) -> str:
    """The client's file name reduced to something safe to show: last path component, printable, short."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if c.isprintable()).strip()
    return name[:200] or "upload"


def multipart_boundary(content_type: str) -> bytes | None:
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        return None
    boundary = params.get(b"boundary")
    return boundary if boundary and len(boundary) <= 200 else None


class _FormReader:
    """Callbacks for python-multipart's streaming parser."""

    def __init__(self, tmp_dir: Path, max_file_bytes: int) -> None:
        self.tmp_dir = tmp_dir
        self.max_file_bytes = max_file_bytes
        self.upload = Upload()
        self._hash = hashlib.sha256()
        self._fh = None
        self._parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._kind = "skip"   # file | field | skip
        self._name = ""
        self._value = bytearray()
        self._saw_file = False

    # ---- headers of one part
    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_FIELDS + 1:
            raise BadForm(f"too many form fields (at most {MAX_FIELDS + 1})")
        self._headers, self._kind, self._name, self._value = {}, "skip", "", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._hname.strip().lower()] = self._hvalue.strip()
        self._hname, self._hvalue = b"", b""

    def on_headers_finished(self) -> None:
        disp, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disp != b"form-data" or b"name" not in params:
            raise BadForm("every form part needs a Content-Disposition: form-data header with a name")
        self._name = params[b"name"].decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            if self._saw_file:
                raise BadForm("send exactly one file (one 'file' field)", FILE_FIELD)
            self._saw_file = True
            self._kind = "file"
            raw = params.get(b"filename")
            self.upload.filename = display_name(raw.decode("utf-8", "replace") if raw is not None else None)
            fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.tmp_dir)
            self._fh = os.fdopen(fd, "wb")
            self.upload.path = Path(tmp)
        elif b"filename" in params:
            raise BadForm(f"unexpected file in field {self._name!r}; the file goes in the 'file' field", self._name)
        else:
            self._kind = "field"

    # ---- data
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._kind == "file":
            self.upload.size += len(chunk)
            if self.upload.size > self.max_file_bytes:
                raise UploadTooLarge()
            self._hash.update(chunk)
            self._fh.write(chunk)
        elif self._kind == "field":
            self._value += chunk
            if len(self._value) > MAX_FIELD_BYTES:
                raise BadForm(f"form field {self._name!r} is too long", self._name)

    def on_part_end(self) -> None:
        if self._kind == "file":
            self._fh.close()
            self._fh = None
        elif self._kind == "field":
            if self._name in self.upload.fields:
                raise BadForm(f"form field {self._name!r} given twice", self._name)
            self.upload.fields[self._name] = bytes(self._value).decode("utf-8", "replace")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
            "on_part_data", "on_part_end")}


async def receive_upload(request, boundary: bytes, tmp_dir: Path, max_file_bytes: int, max_body_bytes: int) -> Upload:
    """Read the request body into a temporary file under ``tmp_dir``.

    Raises :class:`UploadTooLarge` (partial file removed) or :class:`BadForm`.
    """
    reader = _FormReader(tmp_dir, max_file_bytes)
    parser = MultipartParser(boundary, reader.callbacks())
    received = 0
    ok = False
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_body_bytes:
                raise UploadTooLarge()
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if parser.state.name != "END":
            raise BadForm("the multipart body ends before its closing boundary")
        if reader.upload.path is None:
            raise BadForm("form field 'file' is required", FILE_FIELD)
        reader.upload.sha256 = reader._hash.hexdigest()
        ok = True
        return reader.upload
    except (UploadTooLarge, BadForm):
        raise
    except ValueError as exc:  # python-multipart's parse errors (MultipartParseError is a ValueError)
        raise BadForm(f"malformed multipart body ({exc})") from None
    finally:
        reader.close()
        if not ok:
            reader.upload.discard()
