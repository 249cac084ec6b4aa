"""Typed student configs of the distill step: a concrete student, and the ladder `student: auto` climbs."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from toolchain.recipe.strict import Strict

STUDENT_LAYERS: dict[str, str] = {
    "conv1d": "conv1d:FILTERS[:KERNEL=3]",
    "dense": "dense:UNITS",
    "dropout": "dropout:RATE",
    "bigru": "bigru:UNITS (a bidirectional GRU per token, unrolled over the query)",
    "encoder": "encoder:HEADS:FFN (a BERT block: self-attention, GELU feed-forward, post-LayerNorm; "
    "the student then gets position embeddings and an embedding LayerNorm)",
    "max_pool": "max_pool (global max over tokens)",
    "mean_pool": "mean_pool (global average over tokens)",
}

_LAYER_RE = re.compile(r"^([a-z_0-9]+)((?::[0-9.]+)*)$")


def parse_student_layer(text: str) -> tuple[str, list[float]]:
    """'conv1d:64:3' -> ('conv1d', [64, 3]); unknown layer types are a clear error."""
    match = _LAYER_RE.match(text.strip().lower())
    valid = ", ".join(STUDENT_LAYERS.values())
    if not match or match.group(1) not in STUDENT_LAYERS:
        raise ValueError(f"unknown student layer {text!r}; valid layers: {valid}")
    kind = match.group(1)
    args = [float(a) for a in match.group(2).split(":")[1:]]
    need = {"conv1d": (1, 2), "bigru": (1, 1), "dense": (1, 1), "dropout": (1, 1), "max_pool": (0, 0)}
    need.update(mean_pool=(0, 0), encoder=(2, 2))
    lo, hi = need[kind]
    if not lo <= len(args) <= hi:
        raise ValueError(f"student layer {text!r}: expected {STUDENT_LAYERS[kind]}")
    if kind == "dropout" and not 0 <= args[0] < 1:
        raise ValueError(f"student layer {text!r}: dropout rate must be in [0, 1)")
    if kind in ("conv1d", "bigru", "dense", "encoder") and any(a < 1 or a != int(a) for a in args):
        raise ValueError(f"student layer {text!r}: sizes must be positive integers")
    return kind, args


class StudentSpec(Strict):
    """A student built from layers named in the recipe; the last Dense(labels, softmax) is added."""

    embed_dim: int = Field(16, ge=1)
    layers: list[str] = Field(
        default_factory=lambda: ["conv1d:32:3", "max_pool", "dense:32"],
        description=f"in order after the embedding; one of: {', '.join(STUDENT_LAYERS.values())}",
    )
    embedding_init: Literal["teacher"] | None = Field(
        None,
        description="teacher: start the embedding from the teacher's input-token embedding table (an ONNX "
        "teacher's initializer [vocab, hidden]), projected onto its top embed_dim principal directions "
        "when narrower; a student on the teacher's tokenizer only (student_tokenizer: teacher). A student "
        "with encoder layers also starts its position embeddings (projected alike), its embedding "
        "LayerNorm (equal widths) and its first encoder blocks from the teacher's first layers, where "
        "width, heads and feed-forward size equal the teacher's (toolchain/steps/teacher_layers.py)",
    )

    @field_validator("layers")
    @classmethod
    def _parse(cls, layers: list[str]) -> list[str]:
        kinds = [parse_student_layer(t)[0] for t in layers]
        pools = [i for i, k in enumerate(kinds) if k.endswith("_pool")]
        if len(pools) != 1:
            raise ValueError("the student needs exactly one max_pool or mean_pool (tokens -> one vector)")
        if any(k in ("conv1d", "bigru", "encoder") for k in kinds[pools[0] :]):
            raise ValueError("conv1d, bigru and encoder layers must come before the pooling layer")
        return layers

    @model_validator(mode="after")
    def _heads(self) -> StudentSpec:
        for text in self.layers:
            kind, args = parse_student_layer(text)
            if kind == "encoder" and self.embed_dim % int(args[0]):
                raise ValueError(
                    f"student layer {text!r}: embed_dim {self.embed_dim} is not a multiple of the heads"
                )
        return self

    def parameters(self, vocab: int, seq_len: int, n_labels: int, inputs: tuple[str, ...]) -> int:
        """The weights steps/student.py `build_student` gives this spec (converters/parameters.py's count:
        trainable and not), by arithmetic: the ladder of `student: auto` is ordered without TensorFlow."""
        width = self.embed_dim
        total = vocab * width + 2 * width * ("token_type_ids" in inputs) + 2 * ("attention_mask" in inputs)
        if self.encoder_blocks:
            total += seq_len * width + 2 * width  # position embeddings, embedding LayerNorm
        for text in self.layers:
            kind, args = parse_student_layer(text)
            size = int(args[0]) if args else 0
            if kind == "conv1d":
                total += (int(args[1]) if len(args) > 1 else 3) * width * size + size
                width = size
            elif kind == "bigru":  # per direction: 3 gates, input + recurrent kernels, 2 biases (reset_after)
                total += 2 * 3 * size * (width + size + 2)
                width = 2 * size
            elif kind == "encoder":  # q, k, v, output; 2 LayerNorms; FFN in and out
                ffn = int(args[1])
                total += 4 * (width * width + width) + 4 * width + 2 * width * ffn + ffn + width
            elif kind == "dense":
                total += width * size + size
                width = size
        return total + width * n_labels + n_labels

    @property
    def encoder_blocks(self) -> list[tuple[int, int]]:
        """(heads, feed-forward size) of each encoder layer, in order."""
        blocks = [parse_student_layer(t) for t in self.layers]
        return [(int(a[0]), int(a[1])) for k, a in blocks if k == "encoder"]


StudentFamily = Literal["word-cnn", "word-bigru", "teacher-cnn", "tiny-bert"]
TeacherSize = int | Literal["teacher"]
VOCAB_COVERAGE_CAP = 8000  # most tokens of a vocab sized by coverage (the example's own max_vocab)
# tiny-bert in int8: the op types left in float (LayerNorm's mean/variance, the masked softmax, the
# attention's score and residual arithmetic); the weights (embeddings, dense layers) are int8
TINY_BERT_FLOAT_OPS = ["SOFTMAX", "MEAN", "SQUARED_DIFFERENCE", "RSQRT", "MUL", "ADD", "SUB", "BATCH_MATMUL"]


class StudentCandidate(Strict):
    """One student `student: auto` may try (toolchain/search/auto.py): a family at a width.

    word-cnn: the word-level CNN (embedding -> conv1d:hidden:3 -> max_pool), the students of the distill
    presets; word-bigru: embedding -> a bidirectional GRU of `hidden` units -> max_pool; teacher-cnn: the
    CNN on the teacher's own tokenizer, its embedding started from the teacher's (`embedding_init`);
    tiny-bert: `layers` BERT blocks of width `width`, `heads` heads and feed-forward size `hidden` on the
    teacher's tokenizer, masked mean pooling, started from the teacher's embeddings and its first layers
    where the shapes allow ("teacher": the teacher's size), int8 with LayerNorm/softmax arithmetic in float.
    """

    family: StudentFamily
    width: TeacherSize = Field(description="embedding width (tiny-bert: the model width)")
    hidden: TeacherSize = Field(
        description="conv1d filters, GRU units per direction, or tiny-bert's FFN size"
    )
    vocab: int | None = Field(
        None, ge=4, description="word-level families: the vocab's max_size (default: student_vocab's)"
    )
    vocab_coverage: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="word-level families: the words that make up this share of the queries' word "
        "occurrences (student_vocab.coverage; max_size VOCAB_COVERAGE_CAP unless `vocab` is given)",
    )
    per_channel: bool = Field(
        True,
        description="false: the int8 build's weights get one scale per tensor (quantization.per_channel), "
        "which saves 12 bytes per output channel of each weight and bias: an eighth of the smallest "
        "word-level students",
    )
    layers: int = Field(1, ge=1, le=12, description="tiny-bert: encoder blocks")
    heads: TeacherSize = Field(2, description="tiny-bert: attention heads")

    @model_validator(mode="after")
    def _sizes(self) -> StudentCandidate:
        sizes = {"width": self.width, "hidden": self.hidden, "heads": self.heads}
        if self.family != "tiny-bert" and "teacher" in sizes.values():
            raise ValueError(f"{self.family}: only tiny-bert takes the teacher's sizes ('teacher')")
        for name, v in sizes.items():
            if v != "teacher" and not 1 <= int(v) <= 4096:
                raise ValueError(f"{name} {v} is outside 1-4096")
        return self

    def step_fields(self, vocab: StudentVocab | None = None) -> dict[str, Any]:
        """The distill step's student fields for this candidate (`vocab`: the step's student_vocab); a
        tiny-bert's sizes must be resolved from the teacher first (toolchain/search/auto.py)."""
        if self.family == "tiny-bert":
            block = f"encoder:{self.heads}:{self.hidden}"
            student = {"embed_dim": self.width, "layers": [block] * self.layers + ["mean_pool"]}
            return {"student": {**student, "embedding_init": "teacher"}, "student_tokenizer": "teacher"}
        core = f"bigru:{self.hidden}" if self.family == "word-bigru" else f"conv1d:{self.hidden}:3"
        student: dict[str, Any] = {"embed_dim": self.width, "layers": [core, "max_pool"]}
        if self.family == "teacher-cnn":
            return {"student": {**student, "embedding_init": "teacher"}, "student_tokenizer": "teacher"}
        fields: dict[str, Any] = {"student": student, "student_tokenizer": "word"}
        if self.vocab is not None or self.vocab_coverage is not None or vocab is not None:
            words = (vocab or StudentVocab()).model_dump()
            if self.vocab_coverage is not None:
                words.update(coverage=self.vocab_coverage, max_size=self.vocab or VOCAB_COVERAGE_CAP)
            fields["student_vocab"] = {**words, **({"max_size": self.vocab} if self.vocab else {})}
        return fields

    def float_fallback_ops(self) -> list[str]:
        """Op types an int8 build of this student keeps in float (none but for tiny-bert)."""
        return list(TINY_BERT_FLOAT_OPS) if self.family == "tiny-bert" else []

    @property
    def label(self) -> str:
        words = f", {self.vocab} words" if self.vocab else ""
        words += f", words covering {self.vocab_coverage:.1%}" if self.vocab_coverage else ""
        blocks = f", {self.layers} layer{'s' * (self.layers > 1)} x {self.heads} heads" * (
            self.family == "tiny-bert"
        )
        scales = ", per-tensor" * (not self.per_channel)
        return f"{self.family} {self.width}/{self.hidden}{words}{blocks}{scales}"


class AutoStudents(Strict):
    """`student: auto`: the students tried from small to large; the smallest int8 one that meets the gates
    is kept (toolchain/search/auto.py)."""

    candidates: list[StudentCandidate] | None = Field(
        None,
        description="the students tried (ordered by parameters, smallest first); default: the ladder of "
        "toolchain/recipe/presets.py AUTO_LADDER",
    )
    hopeless_after_epochs: int = Field(
        5, ge=1, description="epochs after which a student far below the agreement gate stops"
    )
    hopeless_margin: float = Field(
        0.25, ge=0.0, le=1.0, description="how far (0-1) below the agreement gate is hopeless at that point"
    )


class StudentVocab(Strict):
    """The word-level (regex) vocab a student of a foreign teacher gets: built from train + unlabelled."""

    max_size: int = Field(1000, ge=4, description="most tokens kept (incl. <PAD> <START> <UNKNOWN>)")
    min_count: int = Field(1, ge=1, description="keep words seen at least this often")
    coverage: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="keep only the most frequent words that make up this share of the word occurrences in "
        "the queries (e.g. 0.99; still at most max_size tokens); None: up to max_size",
    )
    seq_len: int | None = Field(None, gt=1, le=1 << 16, description="student tokens (default: the teacher's)")
    words: Literal["ascii", "unicode"] = Field(
        "ascii",
        description="what a word is: ascii (MediaPipe's default `[^\\w']+`, RE2's \\w is ASCII) or unicode "
        "(letters, digits and marks of any script, `[^\\pL\\pN\\pM_']+`: for multilingual queries)",
    )
