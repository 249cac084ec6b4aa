"""The `sentencepiece` kind reproduces transformers' XLM-R tokenization exactly (ids, mask, padding).

The fixture's tokenizer (tests/fixtures/make_xlmr_model.py, tokenizer stage: a SentencePiece Unigram
model trained on English/German/French/Russian shopping queries, converted by transformers'
XLMRobertaConverter) is the reference three ways: `tokenizers` itself, transformers' XLMRobertaTokenizer,
and the raw `sentencepiece` ids shifted by fairseq's offset. No torch, no training of a network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.common import default_root
from tests.fixtures.make_xlmr_model import SPM_FILE, ensure_xlmr_tokenizer
from toolchain.base.atomic import locked
from toolchain.base.errors import DataError
from toolchain.base.types import TokenizerKind
from toolchain.tokenizers.sentencepiece import SentencePieceTokenizer
from toolchain.tokenizers.sources import find_tokenizer, load_saved, tokenizer_from_json

SEQ = 32


@pytest.fixture(scope="module")
def spm_fixture() -> Path:
    with locked(default_root() / ".fixtures.lock"):  # test workers wait for the first one's build
        return ensure_xlmr_tokenizer()


def _texts(root: Path) -> list[str]:
    rows = []
    for split in ("val", "test"):
        rows += [
            json.loads(x)["text"] for x in (root / "data" / f"{split}.jsonl").read_text("utf-8").splitlines()
        ]
    # what the generated split does not hold: long, spaced, NFKC-normalised, unknown script, empty
    rows += ["  Nike   SCHUHE  ", "ﬁt Ｎｉｋｅ café", "你好 кроссовки", "", "x " * 40, "Größe 42½ über"]
    return rows


def test_ids_equal_tokenizers_transformers_and_fairseq_offset(spm_fixture):
    import sentencepiece as spm
    from tokenizers import Tokenizer
    from transformers import XLMRobertaTokenizer

    folder = spm_fixture / "tokenizer"
    texts = _texts(spm_fixture)
    ours = find_tokenizer(None, None, folder / "model.onnx", SEQ)
    assert isinstance(ours, SentencePieceTokenizer) and ours.kind == TokenizerKind.SENTENCEPIECE
    got = ours.encode_batch(texts)

    ref = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ref.enable_truncation(SEQ)
    ref.enable_padding(length=SEQ, pad_id=1, pad_token="<pad>")
    enc = ref.encode_batch(texts)
    assert np.array_equal(got["input_ids"], np.array([e.ids for e in enc]))
    assert np.array_equal(got["attention_mask"], np.array([e.attention_mask for e in enc]))

    hf = XLMRobertaTokenizer.from_pretrained(str(folder))
    batch = hf(texts, padding="max_length", truncation=True, max_length=SEQ, return_tensors="np")
    assert np.array_equal(got["input_ids"], batch["input_ids"])
    assert np.array_equal(got["attention_mask"], batch["attention_mask"])

    sp = spm.SentencePieceProcessor(model_file=str(folder / SPM_FILE))
    fairseq = {0: 3, 1: 0, 2: 2}  # <unk>, <s>, </s> -> XLM-R's ids; every other piece + 1
    for text, row, mask in zip(texts, got["input_ids"], got["attention_mask"], strict=True):
        pieces = [fairseq.get(i, i + 1) for i in sp.encode(text)][: SEQ - 2]
        assert list(row[: mask.sum()]) == [0, *pieces, 2], text
    assert set(got["input_ids"][got["attention_mask"] == 0]) <= {1}  # <pad> = 1, not 0
    assert any(ord(c) > 0x400 for t in texts for c in t) and any(t != t.lower() for t in texts)


def test_describe_save_and_load_back(spm_fixture, tmp_path):
    tok = tokenizer_from_json(spm_fixture / "tokenizer" / "tokenizer.json", SEQ)
    info = tok.describe()
    assert info["special_tokens"] == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    assert info["lowercase"] is False and "Unigram" in info["implementation"]
    assert tok.save(tmp_path) == ["tokenizer.json", "vocab.txt", "sentencepiece.model"]
    back = load_saved(tmp_path, TokenizerKind.SENTENCEPIECE, SEQ)
    assert isinstance(back, SentencePieceTokenizer) and back.spm_model is not None
    texts = _texts(spm_fixture)[:50]
    assert np.array_equal(back.encode_batch(texts)["input_ids"], tok.encode_batch(texts)["input_ids"])
    lines = (tmp_path / "vocab.txt").read_text("utf-8").splitlines()
    assert lines[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and len(lines) == tok.vocab_size


def test_a_bpe_tokenizer_json_is_read_the_same_way(spm_fixture, tmp_path):
    """BPE as `tokenizers` writes a SentencePiece-style BPE (Metaspace, <s> $A </s>): the same ids as the
    library. (transformers 5.23's converter cannot convert a BPE .model: its SentencePieceExtractor call
    is broken, so this file is trained by `tokenizers` itself and has no .model for the device.)"""
    from tokenizers import SentencePieceBPETokenizer, Tokenizer, processors

    train = (spm_fixture / "data" / "train.jsonl").read_text("utf-8").splitlines()
    bpe = SentencePieceBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe.train_from_iterator([json.loads(x)["text"] for x in train], vocab_size=600, special_tokens=specials)
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    bpe.save(str(tmp_path / "tokenizer.json"))
    tok = tokenizer_from_json(tmp_path / "tokenizer.json", SEQ)
    assert "BPE" in str(tok.describe()["implementation"]) and tok.describe()["note"]
    texts = _texts(spm_fixture)
    ref = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    ref.enable_truncation(SEQ)
    ref.enable_padding(length=SEQ, pad_id=1, pad_token="<pad>")
    assert np.array_equal(
        tok.encode_batch(texts)["input_ids"], np.array([e.ids for e in ref.encode_batch(texts)])
    )


def test_refusals_name_the_problem(spm_fixture, tmp_path):
    spec = json.loads((spm_fixture / "tokenizer" / "tokenizer.json").read_text("utf-8"))
    spec["post_processor"] = None
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(DataError, match="no first and last special token"):
        tokenizer_from_json(tmp_path / "tokenizer.json", SEQ)
    spec = json.loads((spm_fixture / "tokenizer" / "tokenizer.json").read_text("utf-8"))
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] != "<pad>"]
    spec["model"]["vocab"][1][0] = "<nopad>"
    other = tmp_path / "nopad"
    other.mkdir()
    (other / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(DataError, match="no pad token"):
        tokenizer_from_json(other / "tokenizer.json", SEQ)
    shutil.copyfile(spm_fixture / "tokenizer" / "tokenizer.json", tmp_path / "ok.json")
    tok = tokenizer_from_json(tmp_path / "ok.json", SEQ)
    assert tok.describe()["note"] == "no SentencePiece .model file beside tokenizer.json"


def test_device_ids_after_the_remap_are_the_models_ids_of_the_lowercased_query(spm_fixture):
    """MediaPipe's path in Python (ASCII lower-case, raw .model ids, [CLS]/[SEP] -> <unk>, 0-padding),
    remapped as the packaged graph does: exactly tokenizer.json's ids of the ASCII-lower-cased query;
    without the remap nearly every id is off (the fairseq offset), which is what packaging must catch."""
    from toolchain.package.spm import DeviceSpm, Remap, ascii_lower

    folder = spm_fixture / "tokenizer"
    tok = tokenizer_from_json(folder / "tokenizer.json", SEQ)
    remap = Remap(tok, folder / SPM_FILE)
    assert remap.shift == 1 and remap.table[0] == 3 and remap.table[1] == 0 and remap.table[2] == 2
    texts = _texts(spm_fixture)
    got = remap.model_ids(texts)
    want = tok.encode_batch([ascii_lower(t) for t in texts])
    assert np.array_equal(got["input_ids"], want["input_ids"])
    assert np.array_equal(got["attention_mask"], want["attention_mask"])
    raw, mask = DeviceSpm(folder / SPM_FILE, SEQ).batch(texts)
    assert np.array_equal(mask, want["attention_mask"]) and set(raw[:, 0]) == {0}  # [CLS] is <unk> (0)
    real = mask.astype(bool)
    assert (raw[real] != want["input_ids"][real]).mean() > 0.9
    assert ascii_lower("Größe NIKE Кроссовки") == "größe nike Кроссовки"
