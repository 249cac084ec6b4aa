"""`edgecomp data`: a labelled query file checked (one-line errors with hints) and written as a project."""

import json

import pytest
from typer.testing import CliRunner

from tests.support.travel_queries import travel_queries, write_travel_queries
from toolchain.base.errors import DataError, InputFileError
from toolchain.cli.main import app
from toolchain.project.folder import DataOptions, load_project, prepare_data
from toolchain.project.labelled import read_labelled
from toolchain.project.split import skeleton

runner = CliRunner()
TRAVEL = DataOptions(text_field="query", label_field="label")


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(n_per_label=12, labels=("a", "b")):
    return [{"text": f"query {w} number {lab}", "intent": lab} for lab in labels for w in _words(n_per_label)]


def _words(n):
    return ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
            "kilo", "lima", "mike", "november"][:n]  # fmt: skip


def test_empty_file_and_missing_file(tmp_path):
    (tmp_path / "q.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match=r"q.jsonl: no queries \(the file is empty\)") as err:
        read_labelled(tmp_path / "q.jsonl")
    assert '{"text": "where is my order", "intent": "order_status"}' in err.value.hint
    with pytest.raises(InputFileError, match="query file not found"):
        read_labelled(tmp_path / "missing.jsonl")


def test_missing_field_names_the_line_the_fields_it_has_and_the_option(tmp_path):
    path = _jsonl(tmp_path / "q.jsonl", [{"query": "where is my bag", "label": "baggage"}])
    with pytest.raises(DataError, match=r"q.jsonl:1: no 'text' field \(this row has: query, label\)") as err:
        read_labelled(path)
    assert err.value.hint == "name the field that holds it with --text-field"
    with pytest.raises(DataError, match=r"q.jsonl:1: no 'intent' field") as err:
        read_labelled(path, text_field="query")
    assert "--label-field" in err.value.hint
    path = _jsonl(tmp_path / "q2.jsonl", [{"text": "", "intent": "a"}])
    with pytest.raises(DataError, match=r"q2.jsonl:1: the 'text' field is '', not a non-empty string"):
        read_labelled(path)
    path = _jsonl(tmp_path / "q3.jsonl", [{"text": "¿¿??", "intent": "a"}])
    with pytest.raises(DataError, match="has no words the tokenizer keeps"):
        read_labelled(path)


def test_label_with_too_few_queries_and_a_single_label(tmp_path):
    rows = _rows(12) + [{"text": "rare one", "intent": "rare"}, {"text": "rare two", "intent": "rare"}]
    with pytest.raises(DataError, match=r"1 label\(s\) with fewer than 10 queries: 'rare' \(2\)") as err:
        read_labelled(_jsonl(tmp_path / "q.jsonl", rows))
    assert "--min-per-label" in err.value.hint
    with pytest.raises(DataError, match="every query has the label 'a'; a classifier needs at least 2"):
        read_labelled(_jsonl(tmp_path / "one.jsonl", _rows(12, labels=("a",))))


def test_duplicates_are_refused_or_dropped_and_conflicting_labels_always_refused(tmp_path):
    rows = _rows(12) + [{"text": "Query ALPHA number a?", "intent": "a"}]  # same tokens as row 1
    path = _jsonl(tmp_path / "q.jsonl", rows)
    with pytest.raises(DataError, match=r"q.jsonl:25: 'Query ALPHA number a\?' repeats line 1") as err:
        read_labelled(path)
    assert "--dedupe" in err.value.hint
    kept = read_labelled(path, dedupe=True)
    assert len(kept.queries) == 24 and kept.dropped_duplicates == 1 and kept.labels == ["a", "b"]
    conflict = _jsonl(tmp_path / "c.jsonl", [*_rows(12), {"text": "query alpha number a", "intent": "b"}])
    with pytest.raises(DataError, match=r"labelled 'b' here and 'a' on line 1") as err:
        read_labelled(conflict, dedupe=True)
    assert "one query cannot teach two intents" in err.value.hint


def test_integer_labels_become_names_and_multiline_labels_are_refused(tmp_path):
    rows = [{"text": r["text"], "intent": int(r["intent"] == "b")} for r in _rows(12)]
    assert read_labelled(_jsonl(tmp_path / "q.jsonl", rows)).labels == ["0", "1"]
    with pytest.raises(DataError, match=r"q2.jsonl:1: the label 'a\\nb' spans lines"):
        read_labelled(_jsonl(tmp_path / "q2.jsonl", [{"text": "x", "intent": "a\nb"}]))


def test_csv_with_a_bom_and_other_column_names(tmp_path):
    path = write_travel_queries(tmp_path / "q.csv", per_intent=20)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    got = read_labelled(path, text_field="query", label_field="label")
    assert len(got.queries) == 120 and len(got.labels) == 6 and got.queries[0].line == 1


def test_prepare_data_writes_a_deterministic_project_without_test_phrasings_in_train(tmp_path):
    src = write_travel_queries(tmp_path / "travel.jsonl")
    a = prepare_data(src, tmp_path / "trip", options=TRAVEL)
    assert a.name == "trip" and (a.leaks.exact, a.leaks.near) == (0, 0)
    assert a.splits.train + a.splits.val + a.splits.test == 360
    files = [
        "data/train.jsonl",
        "data/val.jsonl",
        "data/test.jsonl",
        "labels.txt",
        "vocab.txt",
        "project.json",
    ]
    first = {f: (tmp_path / "trip" / f).read_bytes() for f in files}
    rows = travel_queries()
    (tmp_path / "shuffled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    b = prepare_data(tmp_path / "shuffled.jsonl", tmp_path / "trip2", name="trip", options=TRAVEL)
    for f in files[:-1]:  # project.json differs only in the source path
        assert (tmp_path / "trip2" / f).read_bytes() == first[f], f
    assert b.model_dump(exclude={"source", "dir"}) == a.model_dump(exclude={"source", "dir"})
    train = [json.loads(line) for line in first["data/train.jsonl"].decode().splitlines()]
    test = [json.loads(line) for line in first["data/test.jsonl"].decode().splitlines()]
    assert set(train[0]) == {"text", "intent"}
    assert not {skeleton(r["text"]) for r in test} & {skeleton(r["text"]) for r in train}
    assert first["vocab.txt"].decode().splitlines()[:3] == ["<PAD> 0", "<START> 1", "<UNKNOWN> 2"]
    info = load_project(tmp_path / "trip")
    assert info.seq_len == 16 and info.per_label["baggage"].grouping == "near"
    assert info.to_json() == json.loads(first["project.json"]) and "dir" not in info.to_json()


def test_cli_data_errors_are_one_line_and_write_nothing(tmp_path):
    src = write_travel_queries(tmp_path / "travel.jsonl")
    res = runner.invoke(app, ["data", str(src), "--out", str(tmp_path / "p")])
    assert res.exit_code == 2 and not (tmp_path / "p").exists()
    assert res.output.strip().splitlines() == [
        "error: "
        f"{src}:1: no 'text' field (this row has: query, label) (hint: name the field that holds it with "
        "--text-field)"
    ]
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    args = ["data", str(src), "--text-field", "query", "--label-field", "label"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "foreign")])
    assert res.exit_code == 2 and "not an edgecomp build" in res.output
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "ok"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["per_label"]["weather"]["test"] > 0
    (tmp_path / "ok" / "more.jsonl").write_bytes(src.read_bytes())
    res = runner.invoke(app, ["data", str(tmp_path / "ok" / "more.jsonl"), "--out", str(tmp_path / "ok")])
    assert (
        res.exit_code == 2 and "is inside --out" in res.output and (tmp_path / "ok" / "more.jsonl").is_file()
    )
    res = runner.invoke(app, ["train", str(tmp_path / "foreign")])
    assert res.exit_code == 2 and "is not an edgecomp project (no project.json)" in res.output
    assert "edgecomp data QUERIES.jsonl --out" in res.output
