"""validate's host reference runs in an isolated child: a custom or Flex op is a failed row (exit 1).

Before, the reference ran in edgecomp's own interpreter and such a model ended the command with a
traceback. The Flex model is a custom op named `FlexErf`: how a Select-TF conversion encodes one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.builds import with_custom_op
from toolchain.cli.main import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def int8_model(tiny_int8) -> Path:
    """The shared tiny int8 build's model (conftest), read-only: the tests write their edits elsewhere."""
    return tiny_int8.model_path


@pytest.mark.parametrize(
    "op, described",
    [("EdgecompMissingOp", "custom ops: EdgecompMissingOp"), ("FlexErf", "Flex) ops: FlexErf")],
)
def test_unresolvable_op_is_a_failed_row_not_a_crash(int8_model, tmp_path, op, described):
    model = with_custom_op(int8_model, tmp_path / f"{op}.tflite", op)
    result = CliRunner().invoke(app, ["validate", str(model), "-d", "x86-host", "--json"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert described in result.output


def test_host_reference_failure_names_the_op(int8_model, tmp_path):
    from converters.tflite_model import read_tflite
    from devices.host_reference import HostReferenceFailed, host_reference
    from devices.hostrun import synthetic_feeds

    path = with_custom_op(int8_model, tmp_path / "custom.tflite", "MyFancyOp")
    model = read_tflite(path)
    with pytest.raises(HostReferenceFailed, match="custom ops: MyFancyOp"):
        host_reference(path, model, synthetic_feeds(model, 4), None)


def test_host_reference_matches_the_toolchain_runner(int8_model):
    from converters.tflite_model import read_tflite
    from devices.host_reference import host_reference
    from devices.hostrun import HostRunner, synthetic_feeds

    model = read_tflite(int8_model)
    feeds = synthetic_feeds(model, 16)
    ref = host_reference(int8_model, model, feeds, None)
    with HostRunner(int8_model, threads=1) as runner:  # ai_edge_litert 2.1.0 in a child; reference: 2.3.0
        assert (ref.raw == runner.run(feeds)).all()
        assert (ref.scale, ref.zero_point) == runner.quantization and ref.quantized
