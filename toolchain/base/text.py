"""Reading a user's text file: UTF-8 or one input error naming the file, the line and the byte."""

from __future__ import annotations

from pathlib import Path

from toolchain.base.errors import DataError, EdgecompError


def read_utf8(path: Path, what: str, error: type[EdgecompError] = DataError) -> str:
    """The file's text; a byte that is not UTF-8 is `error` ("x.txt:3: the vocab file is not UTF-8 ...")."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(
            f"{path}:{line}: the {what} file is not UTF-8 "
            f"(byte 0x{data[err.start]:02x} at offset {err.start})",
            hint="re-save it as UTF-8",
        ) from None
