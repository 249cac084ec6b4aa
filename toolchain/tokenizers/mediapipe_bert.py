"""MediaPipe's on-device BERT tokenizer (Android tasks-text TextClassifier/TextEmbedder), reproduced exactly.

Read from the C++ sources of mediapipe v0.10.21 (the pinned app runtime; tokenizer files unchanged at
HEAD 85c0cdc) and the libraries it pins in its WORKSPACE (tensorflow/text v2.2.0 + patch
third_party/tensorflow_text_a0f49e63.diff, google/re2 03da4fc, Unicode 15.0.0):

1. Lower-casing: `absl::AsciiStrToLower(&processed_input)`, A-Z only
   (calculators/tensor/bert_preprocessor_calculator.cc:213). 'É' stays 'É', 'İ' stays 'İ'.
2. Split: `tensorflow::text::RegexSplit(input, delim_re_, true, include_delim_re_, ...)`
   (tasks/cc/text/tokenizers/bert_tokenizer.cc:76) with `kDefaultDelimRe` / `kDefaultIncludeDelimRe`
   (bert_tokenizer.h:36-39): `\\s+` | `[!-/]` `[:-@]` `[\\[-\\`]` `[{-~]` | `[\\p{P}]` | 8 CJK ranges. Every
   match is a delimiter; it is kept as its own token when it fully matches the include regex (all but
   `\\s+`), dropped otherwise; the text between matches is a word (text v2.2.0 regex_split.cc:27-66).
   - RE2's `\\s` is `[\\t\\n\\f\\r ]` (re2/perl_groups.cc code2): no \\v, no NBSP, no U+3000, no U+2028.
   - `\\p{P}` is RE2's Unicode 15.0 table (re2/unicode_groups.cc P_range16/P_range32), frozen below so the
     split does not follow the Python build's `unicodedata` version (3.11 has 14.0: it lacks U+11B00-11B09
     and U+11F43-11F4F). ASCII symbols ($+<=>^`|~) split through the ASCII ranges; non-ASCII symbols
     (S*: €, ©, emoji) and format chars (Cf: U+200B, U+00AD, U+FEFF) do NOT split: they stay in the word.
   - Control chars (Cc) other than \\t\\n\\f\\r are word characters. U+0000 ends the text in 0.10.21:
     tensorflow/text v2.2.0 regex_split.cc:27 builds `absl::string_view leftover(input.data())`, a C
     string, so everything from the first NUL byte on is never tokenized (`nul_truncates=True`). Text
     2.20.0 (mediapipe HEAD since 67354846d) uses the full length: `nul_truncates=False`.
3. WordPiece: `WordpieceTokenize(token, 100, 100, "##", true, "[UNK]", false, ...)` per word
   (bert_tokenizer.cc:82-87, defaults bert_tokenizer.h:40-45; the metadata's BertTokenizerOptions carry
   only the vocab, tokenizer_utils.cc:108-115). A word of more than 100 UTF-8 BYTES becomes one [UNK]
   (text v2.2.0 wordpiece_tokenizer.cc:213-231: `token_len > max_bytes_per_token`; exactly 100 is kept).
   Otherwise greedy longest match left to right over code points (U8_NEXT), a piece after the first is
   looked up as "##" + piece; if some position has no match the whole word becomes one [UNK] and its
   pieces found so far are dropped (v2.2.0 wordpiece_tokenizer.cc:50-90, 163-199, NoTokenFound). The
   100-char subtoken cap never binds once the word is at most 100 bytes.
4. Ids: [CLS] + subwords + [SEP], subwords cut to seq_len - 2 so [SEP] is always last
   (bert_preprocessor_calculator.cc:218-231); ids by vocab lookup, a token missing from the vocab keeps
   id 0; mask 1 over those tokens, 0 after; segment ids all 0; pad id 0 (lines 237-248). A model whose
   inputs have a -1 length signature gets no truncation or padding (`seq_len=None`, lines 203-205,
   text_preprocessing_graph.cc:122-169).
5. Vocab file: lines split on '\\n', one trailing '\\r' removed, EMPTY LINES SKIPPED (they take no id:
   tasks/cc/text/utils/vocab_utils.cc:32-45); a repeated token maps to its last line (bert_tokenizer.cc:31).

Not done by the device: Unicode lower-casing, NFD or accent stripping, control/format char removal,
Chinese-char spacing beyond the CJK ranges above (Hugging Face's BertNormalizer does all of these).

Measured: ids, mask and segment ids equal MediaPipe 0.10.21's own TextEmbedder input on the tricky strings
above and 300 example queries (tests/test_tokenizer_mediapipe_runtime.py, an echo model with BERT metadata).
"""

from __future__ import annotations

import bisect
import string
from pathlib import Path

import numpy as np

SUFFIX = "##"
UNKNOWN = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MAX_BYTES_PER_WORD = 100
RE2_SPACE = frozenset("\t\n\f\r ")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_PUNCT_RANGES = ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E))
CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
# RE2 03da4fc `\p{P}` (Unicode 15.0.0): 191 ranges, hex, "A-B" or a single code point.
_RE2_P_TABLE = """
21-23 25-2A 2C-2F 3A-3B 3F-40 5B-5D 5F 7B 7D A1 A7 AB B6-B7 BB BF 37E 387 55A-55F 589-58A 5BE 5C0
5C3 5C6 5F3-5F4 609-60A 60C-60D 61B 61D-61F 66A-66D 6D4 700-70D 7F7-7F9 830-83E 85E 964-965 970 9FD
A76 AF0 C77 C84 DF4 E4F E5A-E5B F04-F12 F14 F3A-F3D F85 FD0-FD4 FD9-FDA 104A-104F 10FB 1360-1368
1400 166E 169B-169C 16EB-16ED 1735-1736 17D4-17D6 17D8-17DA 1800-180A 1944-1945 1A1E-1A1F 1AA0-1AA6
1AA8-1AAD 1B5A-1B60 1B7D-1B7E 1BFC-1BFF 1C3B-1C3F 1C7E-1C7F 1CC0-1CC7 1CD3 2010-2027 2030-2043
2045-2051 2053-205E 207D-207E 208D-208E 2308-230B 2329-232A 2768-2775 27C5-27C6 27E6-27EF 2983-2998
29D8-29DB 29FC-29FD 2CF9-2CFC 2CFE-2CFF 2D70 2E00-2E2E 2E30-2E4F 2E52-2E5D 3001-3003 3008-3011
3014-301F 3030 303D 30A0 30FB A4FE-A4FF A60D-A60F A673 A67E A6F2-A6F7 A874-A877 A8CE-A8CF A8F8-A8FA
A8FC A92E-A92F A95F A9C1-A9CD A9DE-A9DF AA5C-AA5F AADE-AADF AAF0-AAF1 ABEB FD3E-FD3F FE10-FE19
FE30-FE52 FE54-FE61 FE63 FE68 FE6A-FE6B FF01-FF03 FF05-FF0A FF0C-FF0F FF1A-FF1B FF1F-FF20 FF3B-FF3D
FF3F FF5B FF5D FF5F-FF65 10100-10102 1039F 103D0 1056F 10857 1091F 1093F 10A50-10A58 10A7F
10AF0-10AF6 10B39-10B3F 10B99-10B9C 10EAD 10F55-10F59 10F86-10F89 11047-1104D 110BB-110BC
110BE-110C1 11140-11143 11174-11175 111C5-111C8 111CD 111DB 111DD-111DF 11238-1123D 112A9
1144B-1144F 1145A-1145B 1145D 114C6 115C1-115D7 11641-11643 11660-1166C 116B9 1173C-1173E 1183B
11944-11946 119E2 11A3F-11A46 11A9A-11A9C 11A9E-11AA2 11B00-11B09 11C41-11C45 11C70-11C71
11EF7-11EF8 11F43-11F4F 11FFF 12470-12474 12FF1-12FF2 16A6E-16A6F 16AF5 16B37-16B3B 16B44
16E97-16E9A 16FE2 1BC9F 1DA87-1DA8B 1E95E-1E95F
"""


def _parse_ranges(table: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for item in table.split():
        lo, _, hi = item.partition("-")
        ranges.append((int(lo, 16), int(hi or lo, 16)))
    return tuple(sorted(ranges))


PUNCT_RANGES = _parse_ranges(_RE2_P_TABLE)


def _merge(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


_KEPT = _merge(_ASCII_PUNCT_RANGES + PUNCT_RANGES + CJK_RANGES)  # disjoint, sorted
_KEPT_STARTS = [lo for lo, _ in _KEPT]


def is_kept_delimiter(char: str) -> bool:
    """True when MediaPipe's include-delimiter regex matches `char`: it becomes a token of its own."""
    code = ord(char)
    i = bisect.bisect_right(_KEPT_STARTS, code) - 1
    return i >= 0 and code <= _KEPT[i][1]


def ascii_lower(text: str) -> str:
    """absl::AsciiStrToLower: A-Z to a-z, every other character unchanged."""
    return text.translate(_ASCII_LOWER)


def split_words(text: str, nul_truncates: bool = True) -> list[str]:
    """tensorflow_text RegexSplit with MediaPipe's delimiters: words and kept delimiters, in order."""
    if nul_truncates:
        text = text.split("\0", 1)[0]
    words: list[str] = []
    start = 0
    for i, char in enumerate(text):
        if char in RE2_SPACE:
            if i > start:
                words.append(text[start:i])
            start = i + 1
        elif is_kept_delimiter(char):
            if i > start:
                words.append(text[start:i])
            words.append(char)
            start = i + 1
    if start < len(text):
        words.append(text[start:])
    return words


def load_vocab_file(path: Path) -> list[str]:
    """MediaPipe's LoadVocabFromBuffer: getline on '\\n', drop one trailing '\\r', skip empty lines."""
    data = Path(path).read_bytes().decode("utf-8")
    lines = [line[:-1] if line.endswith("\r") else line for line in data.split("\n")]
    return [line for line in lines if line]


class MediaPipeBertTokenizer:
    """The device side: what MediaPipe 0.10.21's BertPreprocessorCalculator feeds a BERT model.

    `seq_len` is the model's static input length (None: a dynamic-length model, no truncation or
    padding). `nul_truncates` mirrors tensorflow/text v2.2.0 in MediaPipe 0.10.21 (see the module doc).
    """

    def __init__(self, vocab: list[str], seq_len: int | None, nul_truncates: bool = True) -> None:
        if seq_len is not None and seq_len < 2:
            raise ValueError(f"seq_len must be at least 2 ([CLS] and [SEP]), got {seq_len}")
        self.vocab = list(vocab)
        self.seq_len = seq_len
        self.nul_truncates = nul_truncates
        self.index = {token: i for i, token in enumerate(self.vocab)}  # a repeated token: last line wins

    @classmethod
    def from_vocab_file(
        cls, path: Path, seq_len: int | None, nul_truncates: bool = True
    ) -> MediaPipeBertTokenizer:
        return cls(load_vocab_file(path), seq_len, nul_truncates)

    def words(self, text: str) -> list[str]:
        """The words WordPiece sees: ASCII-lowercased text split by MediaPipe's delimiter regex."""
        return split_words(ascii_lower(text), self.nul_truncates)

    def wordpiece(self, word: str) -> list[str]:
        """tensorflow_text WordpieceTokenize with MediaPipe's options (100 bytes, "##", [UNK])."""
        if len(word.encode("utf-8")) > MAX_BYTES_PER_WORD:
            return [UNKNOWN]
        pieces: list[str] = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else SUFFIX + word[start:end]
                if piece in self.index:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return [UNKNOWN]
        return pieces

    def tokens(self, text: str) -> list[str]:
        """All subwords of `text`, before [CLS]/[SEP] and truncation."""
        return [piece for word in self.words(text) for piece in self.wordpiece(word)]

    def model_tokens(self, text: str) -> list[str]:
        """[CLS] + subwords + [SEP], subwords cut so that the whole fits seq_len."""
        subwords = self.tokens(text)
        if self.seq_len is not None:
            subwords = subwords[: self.seq_len - 2]
        return [CLS, *subwords, SEP]

    def ids(self, text: str) -> list[int]:
        """The unpadded input ids (a token missing from the vocab keeps id 0, as LookupId leaves it)."""
        return [self.index.get(token, 0) for token in self.model_tokens(text)]

    def encode(self, text: str) -> dict[str, np.ndarray]:
        """The three model inputs, int32, shape [seq_len] (the token count for a dynamic model)."""
        ids = self.ids(text)
        length = self.seq_len if self.seq_len is not None else len(ids)
        input_ids = np.zeros(length, dtype=np.int32)
        mask = np.zeros(length, dtype=np.int32)
        input_ids[: len(ids)] = ids
        mask[: len(ids)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros(length, dtype=np.int32),
        }
