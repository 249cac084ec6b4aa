"""vocab_trim's mechanics on tiny models: which pieces stay, WordPiece splitting of unseen words as
MediaPipe's tokenizer does it, and a trimmed ONNX that computes what the untrimmed one does.

The full acceptance (a 30k-piece WordPiece classifier, >= 80% of the rows removed, accuracy, MediaPipe
parity in its own environment) is benchmarks/bench_vocab_trim.py; these use the cached BERT (WordPiece)
and XLM-R (SentencePiece) fixtures and onnxruntime, no conversion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from converters.onnx_tflite import OnnxReference, inspect_onnx
from converters.onnx_trim import CLAMP_NAME, REMAP_NAME
from tests.fixtures.common import EXAMPLE
from tests.fixtures.make_bert_models import SPECIALS, bert_wordpiece
from toolchain import data as d
from toolchain.base.errors import RecipeError, StepError
from toolchain.base.types import QuantMode, StepKind, Task
from toolchain.recipe.compose import apply_preset, recipe_from_dict
from toolchain.recipe.steps import VocabTrimStep
from toolchain.sources.loaded import distill_index
from toolchain.steps.vocab_trim import trim_onnx
from toolchain.tokenizers.binding import ModelInput, bind_inputs
from toolchain.tokenizers.mediapipe_bert import MediaPipeBertTokenizer
from toolchain.tokenizers.sentencepiece import SentencePieceTokenizer
from toolchain.tokenizers.trim import plan_trim, renumbered_wordpiece, trimmed_wordpiece
from toolchain.tokenizers.wordpiece import WordPieceTokenizer

SEQ = 16
CORPUS = ["red running shoes", "track my order", "blue shoes"]
# Unseen words: some lose their multi-character pieces (shopping -> sh ##op ...), some were never pieces.
UNSEEN = ["shopping bags", "runner", "trackers ordered", "zebra quiz", "mixed-case RED Shoes!", "x" * 120]


def _wordpiece() -> WordPieceTokenizer:
    pieces = ["red", "run", "##ning", "shoes", "shop", "##ping", "track", "##ers", "my", "order", "##ed",
              "blue", "bags", "bag", "##s", "runner", "sh", "##op"]  # fmt: skip
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("!-,.?")
    vocab = list(SPECIALS) + pieces + chars + ["##" + c for c in chars]
    tok = bert_wordpiece({t: i for i, t in enumerate(dict.fromkeys(vocab))})
    return WordPieceTokenizer(tok.to_str(), SEQ, "tokenizer.json")


def _ids(tok: WordPieceTokenizer, texts: list[str]) -> list[list[int]]:
    enc = tok.encode_batch(texts)
    return [list(enc["input_ids"][i][: enc["attention_mask"][i].sum()]) for i in range(len(texts))]


def test_wordpiece_trim_keeps_specials_chars_and_the_queries_pieces():
    tok = _wordpiece()
    plan = plan_trim(tok, CORPUS)
    new = trimmed_wordpiece(tok, plan)
    kept = set(new.vocab)
    assert set(SPECIALS) <= kept and new.vocab["[PAD]"] == 0
    assert {"a", "z", "##a", "##z", "!"} <= kept  # every single character and ## character
    assert {"red", "run", "##ning", "shoes", "track", "my", "order", "blue"} <= kept
    assert not {"shop", "##ping", "bags", "runner", "##ers", "##ed"} & kept  # no query uses them
    assert plan.reasons["special"] == len(SPECIALS) and plan.covered_share == 1.0
    assert len(new.vocab) == len(plan.kept) < tok.vocab_size
    # the queries it was trimmed to split exactly as before (same pieces, new ids)
    old_pieces = [[tok.vocab_lines()[i] for i in row] for row in _ids(tok, CORPUS)]
    new_pieces = [[new.vocab_lines()[i] for i in row] for row in _ids(new, CORPUS)]
    assert old_pieces == new_pieces


def test_unseen_words_split_as_mediapipe_splits_them_on_the_trimmed_vocab(tmp_path):
    new = trimmed_wordpiece(_wordpiece(), plan_trim(_wordpiece(), CORPUS))
    (tmp_path / "vocab.txt").write_text("\n".join(new.vocab_lines()) + "\n", encoding="utf-8")
    device = MediaPipeBertTokenizer.from_vocab_file(tmp_path / "vocab.txt", SEQ)
    assert _ids(new, UNSEEN) == [device.ids(t) for t in UNSEEN]
    pieces = [device.model_tokens(t) for t in UNSEEN]
    assert pieces[0][:5] == ["[CLS]", "s", "##h", "##o", "##p"]  # shop was dropped: it splits into chars
    assert "[UNK]" not in [p for row in pieces[:5] for p in row]  # every letter still has a piece
    assert pieces[5] == ["[CLS]", "[UNK]", "[SEP]"]  # over 100 bytes: [UNK] on both sides, as before


def test_coverage_and_min_count_keep_fewer_pieces():
    tok = _wordpiece()
    texts = CORPUS + ["red shoes"] * 5
    full, half = plan_trim(tok, texts), plan_trim(tok, texts, coverage=0.5)
    rare = plan_trim(tok, texts, min_count=2)
    assert len(half.kept) < len(full.kept) and half.covered_share >= 0.5
    assert len(rare.kept) < len(full.kept)
    assert plan_trim(tok, texts, single_chars=False).reasons["single_char"] == 0


def _multiscript() -> WordPieceTokenizer:
    """A multilingual-like vocab: Latin letters with accents, Cyrillic, CJK and kana letters, a euro sign."""
    chars = (
        [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("éü€!-") + list("дом") + list("靴赤") + ["の"]
    )
    pieces = ["red", "shoes", "дом", "##ом", "赤い"]
    vocab = list(SPECIALS) + pieces + chars + ["##" + c for c in chars]
    tok = bert_wordpiece({t: i for i, t in enumerate(dict.fromkeys(vocab))})
    return WordPieceTokenizer(tok.to_str(), SEQ, "tokenizer.json")


def test_single_letters_of_scripts_the_queries_do_not_write_in_are_dropped_and_read_unk_on_both_sides(
    tmp_path,
):
    """single_chars: scripts (the default) keeps ASCII, every non-letter (€) and the letters of the scripts
    in use (é, ü: Latin); Cyrillic, CJK and kana letters go, unless a query writes in them. The trimmed
    tokenizer and MediaPipe's give the same ids for queries in the dropped scripts: [UNK] where a word has a
    letter without a piece."""
    tok = _multiscript()
    english = ["red shoes", "blue shoes under 50"]
    plan = plan_trim(tok, english)
    kept = {tok.vocab_lines()[i] for i in plan.kept}
    assert {"a", "##z", "é", "##ü", "€", "##€", "!"} <= kept
    assert not {"д", "##о", "靴", "##赤", "の"} & kept
    assert plan.scripts == ("LATIN",) and plan.single_chars_dropped == 12
    assert len(plan_trim(tok, english, single_chars=True).kept) == len(plan.kept) + 12
    assert plan_trim(tok, english, single_chars=False).reasons["single_char"] == 0
    russian = plan_trim(tok, english + ["красный дом"])
    assert russian.scripts == ("CYRILLIC", "LATIN")
    assert {"д", "##м"} <= {tok.vocab_lines()[i] for i in russian.kept}
    new = trimmed_wordpiece(tok, plan)
    (tmp_path / "vocab.txt").write_text("\n".join(new.vocab_lines()) + "\n", encoding="utf-8")
    device = MediaPipeBertTokenizer.from_vocab_file(tmp_path / "vocab.txt", SEQ)
    queries = ["red дом", "赤い 靴 shoes", "€ shoes!", "のshoes"]  # (accents: MediaPipe keeps them, not HF)
    assert _ids(new, queries) == [device.ids(t) for t in queries]
    pieces = [device.model_tokens(t) for t in queries]
    assert pieces[0] == ["[CLS]", "red", "[UNK]", "[SEP]"] and pieces[1][-2:] == ["shoes", "[SEP]"]
    assert "[UNK]" not in pieces[2] and pieces[3] == ["[CLS]", "[UNK]", "[SEP]"]
    untrimmed = [[tok.vocab_lines()[i] for i in row] for row in _ids(tok, ["café €", "red shoes!"])]
    assert untrimmed == [[new.vocab_lines()[i] for i in row] for row in _ids(new, ["café €", "red shoes!"])]


def test_a_word_level_vocab_is_refused_with_the_step_that_fits():
    regex = d.Tokenizer({"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2, "shoes": 3}, 8)
    with pytest.raises(StepError, match="vocab_prune"):
        plan_trim(regex, CORPUS)


def _queries(path: Path) -> d.QuerySet:
    return d.load_queries(path)


def _scores(path: Path, tok, texts: list[str]) -> np.ndarray:
    info = inspect_onnx(path)
    return OnnxReference(path, info.inputs).run(bind_inputs(tok.encode_batch(texts), info.inputs))


@pytest.mark.slow  # the fixture trains the BERT once per cache key
def test_trimmed_bert_onnx_gives_the_same_logits_where_the_pieces_did_not_change(bert_models, tmp_path):
    src = bert_models.classifier / "model.onnx"
    tok = WordPieceTokenizer((bert_models.classifier / "tokenizer.json").read_text("utf-8"), 32)
    splits = {
        "train": _queries(EXAMPLE / "data" / "train.jsonl"),
        "test": _queries(EXAMPLE / "data" / "test.jsonl"),
    }
    labels = d.load_labels(EXAMPLE / "labels.txt")
    info = inspect_onnx(src)
    inputs = tuple(ModelInput(i.name, i.dtype) for i in info.inputs)
    dst = tmp_path / "trimmed.onnx"
    done = trim_onnx(VocabTrimStep(), src, dst, "input_ids", inputs, tok, splits, labels, Task.CLASSIFICATION)
    report, new = done.report, done.tokenizer
    assert report["vocab_after"] == new.vocab_size < report["vocab_before"] == tok.vocab_size
    held, effect = report["heldout"], report["effect"]
    assert 0 < held.changed < held.queries == len(splits["test"])
    assert effect.max_abs_diff_unchanged == 0.0  # the same rows, read through new ids
    assert abs(effect.accuracy_after - effect.accuracy_before) <= 0.01
    # checked here too, not only by the step: unchanged queries, identical logits
    texts = splits["test"].texts
    changed = {e.text for e in held.examples}
    old_lines, new_lines = tok.vocab_lines(), new.vocab_lines()
    same = [t for t, a, b in zip(texts, _ids(tok, texts), _ids(new, texts), strict=True)
            if [old_lines[i] for i in a] == [new_lines[i] for i in b]][:60]  # fmt: skip
    assert not changed & set(same)
    np.testing.assert_array_equal(_scores(src, tok, same), _scores(dst, new, same))
    # the trimmed vocab.txt is what MediaPipe reads: its ids equal the trimmed tokenizer's on every query
    device = MediaPipeBertTokenizer(new_lines, 32)
    assert _ids(new, texts) == [device.ids(t) for t in texts]


@pytest.mark.slow  # the fixture trains the XLM-R once per cache key
def test_sentencepiece_trim_read_as_unk_remaps_ids_inside_the_graph(xlmr_model, tmp_path):
    folder = xlmr_model / "classifier"
    src = folder / "model.onnx"
    tok = SentencePieceTokenizer(
        (folder / "tokenizer.json").read_text("utf-8"), 32, str(folder / "tokenizer.json")
    )
    splits = {n: _queries(xlmr_model / "data" / f"{n}.jsonl") for n in ("train", "test")}
    labels = d.load_labels(folder / "labels.txt")
    info = inspect_onnx(src)
    inputs = tuple(ModelInput(i.name, i.dtype) for i in info.inputs)
    dst = tmp_path / "trimmed.onnx"
    step = VocabTrimStep(splits=["train"], coverage=0.9, dropped="unk")  # some test ids change
    done = trim_onnx(step, src, dst, "input_ids", inputs, tok, splits, labels, Task.CLASSIFICATION)
    report = done.report
    assert done.tokenizer is tok  # the .model MediaPipe runs stays; the ids are remapped in the graph
    assert report["method"].startswith("in-graph id remap")
    names = {i.name for i in onnx.load(str(dst)).graph.initializer}
    assert REMAP_NAME in names
    assert report["heldout"].changed > 0 and report["effect"].max_abs_diff_unchanged == 0.0
    assert all("<unk>" in e.after for e in report["heldout"].examples)


@pytest.mark.slow  # the fixture trains the XLM-R once per cache key
def test_sentencepiece_split_cuts_the_model_file_and_the_tokenizer_alike(xlmr_model, tmp_path):
    """`dropped: split` on a Unigram SentencePiece model: tokenizer.json and the .model MediaPipe runs keep
    the same pieces; MediaPipe's path (its ids through packaging's table) gives the training ids on every
    test query; no remap in the graph; the rows of unchanged queries read the same."""
    import sentencepiece as spm

    from toolchain.package.spm import Remap, ascii_lower

    folder = xlmr_model / "classifier"
    model_file = folder / "sentencepiece.bpe.model"
    tok = SentencePieceTokenizer(
        (folder / "tokenizer.json").read_text("utf-8"), 32, str(folder / "tokenizer.json"), model_file, folder
    )
    splits = {n: _queries(xlmr_model / "data" / f"{n}.jsonl") for n in ("train", "val", "test")}
    labels = d.load_labels(folder / "labels.txt")
    src = folder / "model.onnx"
    inputs = tuple(ModelInput(i.name, i.dtype) for i in inspect_onnx(src).inputs)
    step = VocabTrimStep(splits=["train"], coverage=0.9)  # dropped: split, the default
    dst = tmp_path / "trimmed.onnx"
    done = trim_onnx(step, src, dst, "input_ids", inputs, tok, splits, labels, Task.CLASSIFICATION)
    new, report = done.tokenizer, done.report
    assert report["dropped"] == "split" and ".model cut" in report["method"]
    assert REMAP_NAME not in {i.name for i in onnx.load(str(dst)).graph.initializer}
    assert len(new.vocab) == report["vocab_after"] < report["vocab_before"] == tok.vocab_size
    specials = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    assert {t: new.vocab[t] for t in specials} == specials and new.unk_id == 3  # XLM-R's pad stays 1
    sp = spm.SentencePieceProcessor(model_proto=new.spm_bytes())
    pieces = {sp.id_to_piece(i) for i in range(sp.get_piece_size())}
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    assert pieces - {"<unk>", "<s>", "</s>"} == set(new.vocab) - {*specials, "<mask>"}
    assert len(new.spm_bytes()) < len(tok.spm_bytes())
    new.save(tmp_path / "build")
    remap = Remap(new, tmp_path / "build" / "sentencepiece.model")  # what `package` puts in the graph
    assert len(remap.table) == sp.get_piece_size()  # the device table shrinks with the .model
    texts = [ascii_lower(t) for t in splits["test"].texts]  # MediaPipe lower-cases A-Z
    device = remap.model_ids(texts)["input_ids"]
    np.testing.assert_array_equal(device, new.encode_batch(texts)["input_ids"])
    assert report["heldout"].changed > 0 and report["effect"].max_abs_diff_unchanged == 0.0

    # auto measures split against the remap on val; unk-renumber is WordPiece's
    auto = trim_onnx(
        VocabTrimStep(splits=["train"], coverage=0.9, dropped="auto"), src, tmp_path / "auto.onnx",
        "input_ids", inputs, tok, splits, labels, Task.CLASSIFICATION,
    ).report  # fmt: skip
    assert set(auto["dropped_choice"].scores) == {"split", "unk"} and auto["dropped"] in ("split", "unk")
    with pytest.raises(StepError, match="unk-renumber renumbers a WordPiece tokenizer"):
        trim_onnx(
            VocabTrimStep(splits=["train"], dropped="unk-renumber"), src, tmp_path / "x.onnx", "input_ids",
            inputs, tok, splits, labels, Task.CLASSIFICATION,
        )  # fmt: skip
    assert not (tmp_path / "x.onnx").exists()


def test_sentencepiece_cut_segments_unseen_scripts_as_the_library_and_keeps_byte_pieces(tmp_path):
    """The cut tokenizer.json and .model agree (MediaPipe's path: the library on the cut .model, through
    packaging's table) on texts the trim never saw: other scripts, NFKC forms, unknown characters (the
    unknown piece's score follows the lowest kept score in both); a byte-fallback piece stays."""
    from tests.fixtures.common import default_root
    from tests.fixtures.make_xlmr_model import SPM_FILE, ensure_xlmr_tokenizer
    from toolchain.base.atomic import locked
    from toolchain.package.spm import Remap, ascii_lower
    from toolchain.tokenizers.trim import trimmed_sentencepiece

    with locked(default_root() / ".fixtures.lock"):  # test workers wait for the first one's build
        root = ensure_xlmr_tokenizer()
    folder = root / "tokenizer"
    text = (folder / "tokenizer.json").read_text("utf-8")
    tok = SentencePieceTokenizer(text, 32, str(folder / "tokenizer.json"), folder / SPM_FILE, folder)
    train = _queries(root / "data" / "train.jsonl").texts
    new = trimmed_sentencepiece(tok, plan_trim(tok, train, coverage=0.8))
    assert new.vocab_size < 0.5 * tok.vocab_size
    new.save(tmp_path)
    remap = Remap(new, tmp_path / "sentencepiece.model")
    unseen = [
        "你好 кроссовки",
        "ﬁt Ｎｉｋｅ café",
        "Größe 42½ über",
        "zzqx wyvern ☃",
        "  Nike   SCHUHE  ",
        "",
    ]
    texts = [ascii_lower(t) for t in [*unseen, *_queries(root / "data" / "test.jsonl").texts]]
    np.testing.assert_array_equal(remap.model_ids(texts)["input_ids"], new.encode_batch(texts)["input_ids"])
    assert new.unk_id in new.encode_unpadded("☃")  # a character no piece has reads <unk> on both sides

    spec = json.loads(text)  # a byte-fallback vocabulary's <0xNN> pieces are kept like the specials
    rare = len(spec["model"]["vocab"]) - 2
    spec["model"]["vocab"][rare][0] = "<0x41>"
    with_byte = SentencePieceTokenizer(json.dumps(spec), 32, str(folder / "tokenizer.json"), None, folder)
    assert rare in plan_trim(with_byte, ["red shoes"]).kept.tolist()


def test_trim_mixed_preset_and_the_step_order():
    base = {"source": {"path": "model.onnx"}, "data": {"train": "train.jsonl"}}
    recipe = apply_preset(recipe_from_dict(base), "trim-mixed")
    assert [s.kind for s in recipe.steps] == [
        StepKind.VOCAB_TRIM
    ] and recipe.quantization.mode == QuantMode.MIXED
    with pytest.raises(RecipeError, match="vocab_trim must be the first step"):
        recipe_from_dict({**base, "steps": [{"kind": "prune"}, {"kind": "vocab_trim"}]})
    step = recipe_from_dict({**base, "steps": [{"kind": "vocab_trim", "corpus": "log.jsonl"}]}).steps[0]
    assert step.corpus == [Path("log.jsonl")] and json.loads(step.model_dump_json())["coverage"] == 1.0
    assert step.single_chars == "scripts"
    for value in (True, False):
        one = recipe_from_dict({**base, "steps": [{"kind": "vocab_trim", "single_chars": value}]})
        assert one.steps[0].single_chars is value
    with pytest.raises(RecipeError, match="single_chars is scripts, true or false"):
        recipe_from_dict({**base, "steps": [{"kind": "vocab_trim", "single_chars": "scrpts"}]})


def test_trim_int4_preset_composes_on_an_onnx_source():
    base = {"source": {"path": "model.onnx"}, "data": {"train": "train.jsonl", "test": "test.jsonl"}}
    recipe = apply_preset(recipe_from_dict(base), "trim-int4")
    assert [s.kind for s in recipe.steps] == [StepKind.VOCAB_TRIM]
    assert recipe.quantization.mode == QuantMode.INT4 and recipe.steps[0].coverage == 1.0
    assert recipe.quantization.int4.rounding == "gptq" and recipe.quantization.int4.max_kernel_cost == 1.0
    saved = json.loads(recipe.model_dump_json(exclude_none=True))  # what the build's recipe.yaml holds
    again = recipe_from_dict(saved)
    assert [s.kind for s in again.steps] == [StepKind.VOCAB_TRIM]
    assert again.quantization.mode == QuantMode.INT4
    assert again.quantization.int4.rounding == "gptq" and again.quantization.int4.max_kernel_cost == 1.0
    # what the recipe's own quantization.int4 sets stays; the preset fills the rest
    mine = {**base, "quantization": {"mode": "int4", "int4": {"rounding": "nearest", "max_bytes": 5000}}}
    kept = apply_preset(recipe_from_dict(mine), "trim-int4").quantization.int4
    assert (kept.rounding, kept.max_bytes, kept.blockwise) == ("nearest", 5000, False)
    assert kept.max_kernel_cost == 1.0


def test_a_trim_ahead_of_distill_makes_the_student_route():
    base = {"source": {"path": "teacher.onnx"}, "data": {"train": "train.jsonl"}}
    trim, distill = {"kind": "vocab_trim"}, {"kind": "distill", "student_tokenizer": "teacher"}
    assert distill_index(recipe_from_dict({**base, "steps": [trim, distill]})) == 1
    assert distill_index(recipe_from_dict({**base, "steps": [distill]})) == 0
    assert distill_index(recipe_from_dict({**base, "steps": [trim]})) is None


def _tiny_onnx(path: Path, tied: bool) -> np.ndarray:
    """ids (int64) -> Cast -> Gather(table) -> ReduceMean: the embedding path a BERT export has; `tied`:
    the table also feeds a MatMul (an output projection tied to the input embedding)."""
    from onnx import TensorProto, helper, numpy_helper

    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Gather", ["table", "ids32"], ["emb"]),
        helper.make_node("ReduceMean", ["emb"], ["out"], axes=[1], keepdims=0),
    ]
    if tied:
        nodes.append(helper.make_node("MatMul", ["out", "table_t"], ["logits"]))
        nodes.insert(0, helper.make_node("Transpose", ["table"], ["table_t"]))
    outputs = [
        helper.make_tensor_value_info("logits" if tied else "out", TensorProto.FLOAT, [1, 10 if tied else 4])
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 3])],
        outputs,
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    return table


def test_onnx_rows_cut_and_remapped_in_the_graph(tmp_path):
    import onnxruntime as ort

    from converters.onnx_trim import trim_embedding

    table = _tiny_onnx(tmp_path / "m.onnx", tied=False)
    kept = np.array([0, 1, 4, 7])
    remap = np.array([0, 1, 1, 1, 2, 1, 1, 3, 1, 1], np.int32)  # a dropped id reads row 1 (the unknown)
    cut = trim_embedding(tmp_path / "m.onnx", tmp_path / "t.onnx", "ids", kept, remap)
    assert (cut.rows_before, cut.rows_after, cut.width) == (10, 4, 4)
    ids = np.array([[0, 4, 9]], np.int64)
    got = ort.InferenceSession(str(tmp_path / "t.onnx")).run(None, {"ids": ids})[0]
    np.testing.assert_array_equal(got, table[[0, 4, 1]].mean(0, keepdims=True))
    trim_embedding(tmp_path / "m.onnx", tmp_path / "w.onnx", "ids", kept)  # a rewritten tokenizer: new ids
    got = ort.InferenceSession(str(tmp_path / "w.onnx")).run(None, {"ids": np.array([[0, 2, 3]], np.int64)})[
        0
    ]
    np.testing.assert_array_equal(got, table[[0, 4, 7]].mean(0, keepdims=True))


def test_a_tied_embedding_table_is_refused(tmp_path):
    from converters.onnx_trim import trim_embedding
    from toolchain.base.errors import InputFileError

    _tiny_onnx(tmp_path / "m.onnx", tied=True)
    with pytest.raises(InputFileError, match="tied weights"):
        trim_embedding(tmp_path / "m.onnx", tmp_path / "t.onnx", "ids", np.array([0, 1]))
    assert not (tmp_path / "t.onnx").exists()


def _bert_trim(bert_models, tmp_path: Path, step: VocabTrimStep, task: Task = Task.CLASSIFICATION):
    folder = bert_models.classifier if task == Task.CLASSIFICATION else bert_models.embedder
    src = folder / "model.onnx"
    tok = WordPieceTokenizer((folder / "tokenizer.json").read_text("utf-8"), 32)
    splits = {n: _queries(EXAMPLE / "data" / f"{n}.jsonl") for n in ("train", "val", "test")}
    inputs = tuple(ModelInput(i.name, i.dtype) for i in inspect_onnx(src).inputs)
    dst = tmp_path / "trimmed.onnx"
    labels = d.load_labels(EXAMPLE / "labels.txt")
    return src, dst, tok, splits, trim_onnx(step, src, dst, "input_ids", inputs, tok, splits, labels, task)


@pytest.mark.slow  # the fixture trains the BERT once per cache key
def test_wordpiece_dropped_unk_keeps_the_tokenizer_and_remaps_in_the_graph(bert_models, tmp_path):
    step = VocabTrimStep(splits=["train"], dropped="unk")
    src, dst, tok, splits, done = _bert_trim(bert_models, tmp_path, step)
    report = done.report
    assert done.tokenizer is tok and report["dropped"] == "unk" and report["dropped_choice"] is None
    assert report["method"].startswith("in-graph id remap") and report["vocab_after"] < tok.vocab_size
    assert REMAP_NAME in {i.name for i in onnx.load(str(dst)).graph.initializer}
    held = report["heldout"]
    assert held.changed > 0 and all("[UNK]" in e.after for e in held.examples)
    assert report["effect"].max_abs_diff_unchanged == 0.0
    # the trimmed graph on the untouched tokenizer's ids == the untrimmed graph with dropped ids -> [UNK]
    texts = [e.text for e in held.examples]
    kept = set(plan_trim(tok, splits["train"].texts).kept.tolist())  # what the step kept (deterministic)
    enc = tok.encode_batch(texts)
    unk = np.where(np.isin(enc["input_ids"], list(kept)), enc["input_ids"], tok.vocab["[UNK]"])
    info = inspect_onnx(src)
    expect = OnnxReference(src, info.inputs).run(bind_inputs({**enc, "input_ids": unk}, info.inputs))
    np.testing.assert_allclose(_scores(dst, tok, texts), expect, rtol=0, atol=1e-5)


def test_the_renumbered_tokenizer_splits_every_text_as_before_with_the_kept_pieces_first():
    tok = _wordpiece()
    plan = plan_trim(tok, CORPUS)
    new = renumbered_wordpiece(tok, plan)
    assert new.vocab_size == tok.vocab_size and set(new.vocab) == set(tok.vocab)
    old_lines, new_lines = tok.vocab_lines(), new.vocab_lines()
    k = len(plan.kept)
    assert new_lines[:k] == [old_lines[i] for i in plan.kept] == trimmed_wordpiece(tok, plan).vocab_lines()
    assert new.vocab["[PAD]"] == 0 and new.vocab["[UNK]"] == plan.unk_new
    by_old = {i: t for t, i in tok.vocab.items()}
    for text in CORPUS + UNSEEN:  # the same pieces; a dropped one has an id >= the kept count
        (old_ids,), (new_ids,) = _ids(tok, [text]), _ids(new, [text])
        assert [by_old[i] for i in old_ids] == [new_lines[i] for i in new_ids]
        kept = set(plan.kept.tolist())
        assert all((i < k) == (o in kept) for o, i in zip(old_ids, new_ids, strict=True))
    device = MediaPipeBertTokenizer(new.vocab_lines(), SEQ)  # MediaPipe reads the renumbered vocab.txt alike
    for text in CORPUS + UNSEEN[:4]:
        assert device.ids(text) == _ids(new, [text.lower()])[0]


@pytest.mark.slow  # the fixture trains the BERT once per cache key
def test_wordpiece_dropped_unk_renumber_clamps_ids_with_no_remap_table(bert_models, tmp_path):
    step = VocabTrimStep(splits=["train"], dropped="unk-renumber")
    src, dst, tok, splits, done = _bert_trim(bert_models, tmp_path, step)
    report, new = done.report, done.tokenizer
    assert report["dropped"] == "unk-renumber" and report["method"].startswith("tokenizer renumbered")
    assert new is not tok and new.vocab_size == tok.vocab_size and report["vocab_after"] < tok.vocab_size
    inits = {i.name: i for i in onnx.load(str(dst)).graph.initializer}
    assert (
        REMAP_NAME not in inits
        and int(onnx.numpy_helper.to_array(inits[CLAMP_NAME])) == report["vocab_after"]
    )
    table = next(i for i in inits.values() if len(i.dims) == 2 and i.dims[0] == report["vocab_after"] + 1)
    assert table.dims[1] > 1  # the kept rows and the [UNK] row they clamp to
    held = report["heldout"]
    assert held.changed > 0 and all("[UNK]" in e.after for e in held.examples)
    assert report["effect"].max_abs_diff_unchanged == 0.0
    # the trimmed graph on the renumbered ids == the untrimmed graph with dropped ids -> [UNK]
    texts = [e.text for e in held.examples]
    kept = set(plan_trim(tok, splits["train"].texts).kept.tolist())
    enc = tok.encode_batch(texts)
    unk = np.where(np.isin(enc["input_ids"], list(kept)), enc["input_ids"], tok.vocab["[UNK]"])
    info = inspect_onnx(src)
    expect = OnnxReference(src, info.inputs).run(bind_inputs({**enc, "input_ids": unk}, info.inputs))
    np.testing.assert_allclose(_scores(dst, new, texts), expect, rtol=0, atol=1e-5)
    remapped = tmp_path / "remapped"  # the same reading as dropped: unk, without its 4 bytes per piece
    remapped.mkdir()
    *_, unk_done = _bert_trim(bert_models, remapped, VocabTrimStep(splits=["train"], dropped="unk"))
    np.testing.assert_allclose(_scores(remapped / "trimmed.onnx", tok, texts), expect, rtol=0, atol=1e-5)
    saved = (remapped / "trimmed.onnx").stat().st_size - dst.stat().st_size
    assert saved >= 4 * tok.vocab_size - 4 * table.dims[1] - 1024


@pytest.mark.slow  # the fixture trains the BERT once per cache key
def test_dropped_auto_measures_both_readings_on_val_and_keeps_the_better(bert_models, tmp_path):
    _, dst, tok, splits, done = _bert_trim(
        bert_models, tmp_path, VocabTrimStep(splits=["train"], dropped="auto")
    )
    report, choice = done.report, done.report["dropped_choice"]
    assert choice is not None and choice.split.startswith("val") and choice.queries == len(splits["val"])
    assert set(choice.scores) == {"split", "unk"} and all(0.5 < v <= 1.0 for v in choice.scores.values())
    unk_wins = choice.scores["unk"] > choice.scores["split"]
    assert f"dropped: auto chose {report['dropped']} (on val:" in report["summary"]
    assert report["dropped"] == ("unk-renumber" if unk_wins else "split")
    assert done.tokenizer is not tok and (done.tokenizer.vocab_size == tok.vocab_size) == unk_wins
    inits = {i.name for i in onnx.load(str(dst)).graph.initializer}
    assert (CLAMP_NAME in inits) == unk_wins and REMAP_NAME not in inits  # the model chosen, not the last
    without_val = {k: v for k, v in splits.items() if k != "val"}
    step = VocabTrimStep(splits=["train"], dropped="auto")
    info = inspect_onnx(dst)
    again = trim_onnx(step, bert_models.classifier / "model.onnx", tmp_path / "b.onnx", "input_ids",
                      tuple(ModelInput(i.name, i.dtype) for i in info.inputs), tok, without_val,
                      d.load_labels(EXAMPLE / "labels.txt"), Task.CLASSIFICATION)  # fmt: skip
    assert again.report["dropped"] == "split" and again.report["dropped_choice"] is None


def test_dropped_unk_is_refused_on_a_keras_model():
    from toolchain.base.progress import SilentProgress
    from toolchain.steps import vocab_trim
    from toolchain.steps.base import StepContext

    ctx = StepContext(None, None, None, None, [], 0, SilentProgress(), tokenizer=_wordpiece())
    with pytest.raises(StepError, match="dropped: unk remaps ids inside an ONNX graph"):
        vocab_trim.run(VocabTrimStep(dropped="unk"), None, ctx)
    with pytest.raises(StepError, match="dropped: unk-renumber clamps ids inside an ONNX graph"):
        vocab_trim.run(VocabTrimStep(dropped="unk-renumber"), None, ctx)


def test_unlabelled_flag_feeds_the_trims_corpus(tmp_path):
    from toolchain.recipe.compose import compose_recipe

    model, log = tmp_path / "model.onnx", tmp_path / "log.jsonl"
    recipe = compose_recipe(None, model, {}, preset="trim-int4", distill={"unlabelled": str(log)})
    assert [s.kind for s in recipe.steps] == [StepKind.VOCAB_TRIM]
    assert [Path(p).name for p in recipe.steps[0].corpus] == ["log.jsonl"]
    with pytest.raises(RecipeError, match="--unlabelled is for a distill step"):
        compose_recipe(None, model, {}, preset="dynamic", distill={"unlabelled": str(log)})
    both = {"steps": [{"kind": "vocab_trim"}, {"kind": "distill", "student_tokenizer": "teacher"}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"source": {"path": str(model)}, **both}))
    recipe = compose_recipe(tmp_path / "r.yaml", None, {}, distill={"unlabelled": str(log)})
    trim, distill = recipe.steps
    assert [Path(p).name for p in trim.corpus] == ["log.jsonl"] and Path(
        distill.unlabelled
    ).name == "log.jsonl"


@pytest.mark.slow  # the fixture trains the BERT once per cache key
def test_dropped_auto_on_an_embedder_compares_mean_cosines(bert_models, tmp_path):
    step = VocabTrimStep(splits=["train"], dropped="auto")
    *_, done = _bert_trim(bert_models, tmp_path, step, Task.EMBEDDING)
    choice = done.report["dropped_choice"]
    assert choice.measure == "mean cosine" and all(0.5 < v <= 1.0 for v in choice.scores.values())
    unk_wins = choice.scores["unk"] > choice.scores["split"]
    assert done.report["dropped"] == ("unk-renumber" if unk_wins else "split")
    assert done.report["effect"].mean_cosine is not None
