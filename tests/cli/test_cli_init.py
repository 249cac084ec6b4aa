"""A new user's path, CLI only: a labelled query file -> data -> train -> convert --preset distill-prune-int8
-> validate -> package, on a dataset that is not the shipped example (a travel assistant's six intents).

Everything goes through the Typer app as a user would type it (CliRunner, cwd in a temp folder, no Python
written by the user); about 50 s on 2 cores, most of it the distill -> prune -> QAT chain.
"""

import json
import zipfile

import pytest
from typer.testing import CliRunner

from tests.support.travel_queries import write_travel_queries
from toolchain.cli.main import app
from toolchain.project.split import skeleton

runner = CliRunner()


def _run(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, f"edgecomp {' '.join(args)} exited {res.exit_code}: {res.output}"
    return res.stdout


def _skeletons(path) -> set[tuple[str, ...]]:
    return {skeleton(json.loads(line)["text"]) for line in path.read_text().splitlines()}


@pytest.mark.slow
def test_from_a_query_file_to_a_packaged_model_with_five_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_travel_queries(tmp_path / "travel.csv")  # columns query,label: not the recipe's field names

    summary = json.loads(
        _run(
            "data", "travel.csv", "--out", "trip", "--text-field", "query", "--label-field", "label", "--json"
        )
    )
    assert summary["queries"] == 360 and len(summary["labels"]) == 6
    assert summary["leaks"] == {"exact": 0, "near": 0}
    train, test = (
        _skeletons(tmp_path / "trip/data/train.jsonl"),
        _skeletons(tmp_path / "trip/data/test.jsonl"),
    )
    assert train and test and not train & test  # no test phrasing (numbers aside) is in train

    trained = json.loads(_run("train", "trip", "--json"))
    assert trained["model_name"] == "trip" and trained["test"]["accuracy"] >= 0.75
    assert trained["epochs_run"] < 30  # stopped early on the val loss
    gates = trained["gates"]
    assert set(gates) == {"max_accuracy_drop", "min_agreement"}

    report = json.loads(
        _run(
            "convert",
            "trip/model.keras",
            "--recipe",
            "trip/recipe.yaml",
            "--preset",
            "distill-prune-int8",
            "--json",
        )
    )
    assert [s["kind"] for s in report["steps"]] == ["distill", "prune", "qat"]
    assert report["quantization"]["mode"] == "int8" and report["quantization"]["int8_mac_share"] == 1.0
    result = report["evaluation"]["vs_source_float"]
    print(  # docs/guides/own-data.md's "Measured on the test's travel-assistant file" (run with -s)
        f"\ndocs numbers: {summary['groups']} groups, baseline {trained['parameters']:,} params, "
        f"{trained['test']['accuracy']:.1%} on {trained['test'].get('queries')} test queries, epochs run "
        f"{trained['epochs_run']} (best {trained['best_epoch']}); distill-prune-int8 drop "
        f"{result['accuracy_drop_points']:+.2f} pt, agreement {result['top1_agreement']:.1%}, "
        f"ratios {report['ratios_vs_fp32']}"
    )
    assert result["accuracy_drop_points"] <= gates["max_accuracy_drop"]
    assert result["top1_agreement"] >= gates["min_agreement"]
    build = tmp_path / "build" / "trip"
    assert (build / "model.tflite").is_file()

    from converters.tflite_model import read_tflite

    names = [t.name for t in read_tflite(build / "model.tflite").tensors]
    assert any(n.startswith("trip/") for n in names)  # the user's name, not the example's
    assert not any("shopping" in n or "student" in n for n in names)

    validation = json.loads(_run("validate", "build/trip", "--device", "x86-host", "--json"))
    assert validation["passed"] and validation["devices"]["x86-host"]["passed"]

    _run("package", "build/trip")
    bundle = tmp_path / "dist" / "trip-1.0.0"
    assert (bundle / "trip.tflite").is_file() and (bundle / "manifest.json").is_file()
    with zipfile.ZipFile(tmp_path / "dist" / "trip-1.0.0.zip") as z:
        assert "trip-1.0.0/trip.tflite" in z.namelist()


@pytest.mark.slow
def test_train_is_deterministic_and_writes_a_recipe_convert_takes(tmp_path, monkeypatch):
    from toolchain.base.tfenv import keras
    from toolchain.recipe.compose import load_recipe

    monkeypatch.chdir(tmp_path)
    write_travel_queries(tmp_path / "q.jsonl", per_intent=30)
    _run("data", "q.jsonl", "--out", "p", "--text-field", "query", "--label-field", "label")
    tiny = ["--epochs", "3", "--embed-dim", "8", "--filters", "8", "--hidden", "8", "--json"]
    weights = []
    for _ in range(2):
        summary = json.loads(_run("train", "p", *tiny))
        weights.append(keras().models.load_model(tmp_path / "p" / "model.keras").get_weights())
    assert all((a == b).all() for a, b in zip(*weights, strict=True))
    assert summary["epochs_run"] == 3 and summary["parameters"] == sum(w.size for w in weights[0])
    text = (tmp_path / "p" / "recipe.yaml").read_text()
    assert "source:\n  path: model.keras" in text and "dir: ../build" in text  # relative: the folder moves
    recipe = load_recipe(tmp_path / "p" / "recipe.yaml")
    assert recipe.name == "p" and recipe.build_dir.resolve() == tmp_path / "build" / "p"
    assert recipe.data.test == tmp_path / "p" / "data" / "test.jsonl"
    assert recipe.evaluation.max_accuracy_drop == summary["gates"]["max_accuracy_drop"]
    (tmp_path / "p" / "project.json").write_text('{"format": 1, "name": "p"}')
    res = runner.invoke(app, ["train", "p"])
    assert res.exit_code == 2 and "project.json: 'source' field required" in res.output
