"""Read the MediaPipe Tasks metadata inside a .tflite without MediaPipe (for `edgecomp inspect`).

The metadata is a flatbuffer (metadata_schema.fbs, identifier "M001") stored in the model's buffer named
TFLITE_METADATA; the associated files (labels.txt, vocab.txt) are a zip archive appended to the model.
Only the fields an app team checks are read; field numbers follow metadata_schema.fbs of mediapipe 0.10.21.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import flatbuffers
from flatbuffers.table import Table

from converters.tflite_model import verify_tflite
from toolchain.base.errors import InputFileError

METADATA_NAME = "TFLITE_METADATA"
_PROCESS_UNITS = {4: "bert", 5: "sentencepiece", 6: "regex"}  # ProcessUnitOptions union tags
_FILE_TYPES = {
    0: "UNKNOWN",
    1: "DESCRIPTIONS",
    2: "TENSOR_AXIS_LABELS",
    3: "TENSOR_VALUE_LABELS",
    4: "TENSOR_AXIS_SCORE_CALIBRATION",
    5: "VOCABULARY",
    6: "SCANN_INDEX_FILE",
}


@dataclass(frozen=True)
class TokenizerInfo:
    kind: str  # regex | bert | sentencepiece
    delim_regex: str | None
    vocab_file: str | None


@dataclass
class EmbeddedMetadata:
    """What MediaPipe Tasks will read from the model."""

    name: str | None
    version: str | None
    description: str | None
    author: str | None
    license: str | None
    min_parser_version: str | None
    tokenizer: TokenizerInfo | None
    label_file: str | None
    output_name: str | None
    files: dict[str, bytes] = field(default_factory=dict)  # the packed associated files

    @property
    def labels(self) -> list[str] | None:
        if self.label_file is None or self.label_file not in self.files:
            return None
        text = self.files[self.label_file].decode("utf-8", "replace")  # shown, never trusted
        return [ln for ln in text.splitlines() if ln.strip()]

    @property
    def vocab_size(self) -> int | None:
        vocab = self.tokenizer.vocab_file if self.tokenizer else None
        if vocab is None or vocab not in self.files or self.tokenizer.kind == "sentencepiece":
            return None  # a SentencePiece .model is a binary proto, not one token per line
        return sum(1 for ln in self.files[vocab].decode("utf-8", "replace").splitlines() if ln.strip())

    def as_dict(self) -> dict:
        labels = self.labels
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "author": self.author,
            "license": self.license,
            "min_parser_version": self.min_parser_version,
            "tokenizer": None if self.tokenizer is None else self.tokenizer.__dict__,
            "vocab_size": self.vocab_size,
            "label_file": self.label_file,
            "labels_count": None if labels is None else len(labels),
            "associated_files": sorted(self.files),
        }


def _field(t: Table, n: int) -> int:
    return t.Offset(4 + 2 * n)


def _str(t: Table, n: int) -> str | None:
    o = _field(t, n)
    return t.String(o + t.Pos).decode("utf-8") if o else None


def _tables(t: Table, n: int) -> list[Table]:
    o = _field(t, n)
    if not o:
        return []
    start = t.Vector(o)
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]


def _byte(t: Table, n: int) -> int:
    o = _field(t, n)
    return int(t.Get(flatbuffers.number_types.Int8Flags, o + t.Pos)) if o else 0


def _union(t: Table, n: int) -> Table | None:
    o = _field(t, n)
    return Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _file_of_type(files: list[Table], wanted: int) -> str | None:
    return next((_str(f, 0) for f in files if _byte(f, 2) == wanted), None)


def _tokenizer(units: list[Table]) -> TokenizerInfo | None:
    for unit in units:
        kind = _PROCESS_UNITS.get(_byte(unit, 0))  # ProcessUnit.options_type
        opts = _union(unit, 1)
        if kind is None or opts is None:
            continue
        if kind == "regex":  # RegexTokenizerOptions: delim_regex_pattern, vocab_file
            files = _tables(opts, 1)
            return TokenizerInfo("regex", _str(opts, 0), _str(files[0], 0) if files else None)
        if kind == "bert":  # BertTokenizerOptions: vocab_file
            files = _tables(opts, 0)
            return TokenizerInfo("bert", None, _str(files[0], 0) if files else None)
        files = _tables(opts, 0)  # SentencePieceTokenizerOptions: sentencePiece_model (files), vocab_file
        return TokenizerInfo("sentencepiece", None, _str(files[0], 0) if files else None)
    return None


MAX_FILE_BYTES = 64 << 20  # one associated file (a vocab of 30k WordPieces is ~250 KB)
MAX_TOTAL_BYTES = 128 << 20
MAX_FILES = 256


def _packed_files(data: bytes, origin: str) -> dict[str, bytes]:
    """The appended zip's files, each decompressed at most MAX_FILE_BYTES (a zip bomb is an error).

    The sizes in the zip headers are the file's word, so each entry is read in bounded chunks and counted.
    """
    files: dict[str, bytes] = {}
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_FILES:
                raise _bomb(origin, f"{len(infos)} associated files (at most {MAX_FILES})")
            for info in infos:
                chunks, size = [], 0
                with zf.open(info) as fh:
                    while chunk := fh.read(1 << 20):
                        size += len(chunk)
                        total += len(chunk)
                        if size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                            raise _bomb(
                                origin, f"{info.filename!r} decompresses past {MAX_FILE_BYTES >> 20} MiB"
                            )
                        chunks.append(chunk)
                files[info.filename] = b"".join(chunks)
    except zipfile.BadZipFile:
        return {}
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise InputFileError(
            f"{origin}: unreadable associated files ({err.__class__.__name__}: {str(err)[:100]})",
            hint="re-run edgecomp package",
        ) from None
    return files


def _bomb(origin: str, what: str) -> InputFileError:
    return InputFileError(f"{origin}: refusing its associated files: {what}", hint="re-run edgecomp package")


def metadata_buffer(data: bytes, origin: str = "model") -> bytes | None:
    """The raw TFLITE_METADATA flatbuffer of a model (verified first: indices in range), or None."""
    from ai_edge_litert import schema_py_generated as schema

    verify_tflite(data, origin)
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        if md.Name() and md.Name().decode() == METADATA_NAME:
            buf = model.Buffers(md.Buffer())
            if buf.DataLength():
                return buf.DataAsNumpy().tobytes()
            offset, size = int(buf.Offset()), int(buf.Size())  # > 2 GB models keep buffers past the end
            return data[offset : offset + size] if offset > 1 else None
    return None


def read_metadata(data: bytes, origin: str = "model") -> EmbeddedMetadata | None:
    """Parse the Tasks metadata of a model's bytes; None if it has none."""
    buf = metadata_buffer(data, origin)
    if buf is None:
        return None
    if len(buf) < 8 or buf[4:8] != b"M001":
        raise InputFileError(f"{origin}: {METADATA_NAME} is not a MediaPipe metadata flatbuffer")
    try:
        root = Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
        subgraphs = _tables(root, 3)
        tokenizer, label_file, output_name = None, None, None
        if subgraphs:
            sg = subgraphs[0]
            inputs, outputs = _tables(sg, 2), _tables(sg, 3)
            units = [u for t in inputs for u in _tables(t, 4)] + _tables(sg, 5)
            tokenizer = _tokenizer(units)
            if outputs:
                output_name = _str(outputs[0], 0)
                label_file = _file_of_type(_tables(outputs[0], 6), 2)  # TENSOR_AXIS_LABELS
        return EmbeddedMetadata(
            name=_str(root, 0),
            description=_str(root, 1),
            version=_str(root, 2),
            author=_str(root, 4),
            license=_str(root, 5),
            min_parser_version=_str(root, 7),
            tokenizer=tokenizer,
            label_file=label_file,
            output_name=output_name,
            files=_packed_files(data, origin),
        )
    except InputFileError:
        raise
    except Exception as err:  # the flatbuffer Table API raises IndexError, struct.error, ... past the end
        raise InputFileError(
            f"{origin}: corrupt MediaPipe metadata ({err.__class__.__name__})", hint="re-run edgecomp package"
        ) from None
