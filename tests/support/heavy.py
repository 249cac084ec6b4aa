"""What keeps `make test-fast` honest: every call that trains or converts a model, every emulated ARM
runtime started and every choice made by measuring speed is recorded.

Wrapped, on the real functions and for the whole session (no monkeypatch): Keras 2 `Model.fit` (tf_keras,
which tfmot and every step use), every TFLite converter's `convert` (Keras, SavedModel and calibration all
go through tf.lite.TFLiteConverter), edgecomp's onnx2tf call and the fixture scripts' torch training loop
(CALLS); the QEMU runtime environment made for a device profile (EMULATED: only once it is made, so a test
of the missing-QEMU error does not count); the mixed-precision search's speed choice (TIMED). The wrappers
are put on when those modules are imported (an import hook), so a session that never imports TensorFlow
does not pay for it. conftest.py clears the record before a test sets up, and fails a test not marked
slow that made any of these calls (not marked qemu that started an emulated runtime, not marked serial
that measured speed), itself or through a fixture it set up first. Work done in a child process (a CLI
run as a subprocess) is not seen here.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

CALLS: list[str] = []  # trained or converted by the current test, in call order (cleared before each test)
EMULATED: list[str] = []  # device profiles the current test started a QEMU runtime for
TIMED: list[str] = []  # choices the current test made by measuring speed (the mixed-precision search)


def _recorded(
    fn: Callable[..., Any], what: str, into: list[str] = CALLS, made: bool = False
) -> Callable[..., Any]:
    """`fn` recording `what` in `into` when called (`made`: only when it returned, i.e. made its result)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not made:
            into.append(what)
            return fn(*args, **kwargs)
        result = fn(*args, **kwargs)
        into.append(what)
        return result

    wrapper.__heavy__ = what  # type: ignore[attr-defined]
    return wrapper


def _wrap_method(cls: type, name: str, what: str) -> None:
    fn = cls.__dict__.get(name)
    if fn is not None and not hasattr(fn, "__heavy__"):
        setattr(cls, name, _recorded(fn, what))


def _keras_training(module: ModuleType) -> None:
    _wrap_method(module.Model, "fit", "Keras Model.fit")


def _tflite_converters(module: ModuleType) -> None:
    base = module.TFLiteConverterBase
    for value in list(vars(module).values()):
        if isinstance(value, type) and issubclass(value, base):
            _wrap_method(value, "convert", f"TFLite {value.__name__}.convert")


def _module_function(
    name: str, what: str, into: list[str] = CALLS, made: bool = False
) -> Callable[[ModuleType], None]:
    def patch(module: ModuleType) -> None:
        fn = getattr(module, name)
        if not hasattr(fn, "__heavy__"):
            setattr(module, name, _recorded(fn, what, into, made))

    return patch


def _qemu_runtimes(module: ModuleType) -> None:
    fn = module._qemu_env
    if hasattr(fn, "__heavy__"):
        return

    @functools.wraps(fn)
    def made(profile: Any, *args: Any, **kwargs: Any) -> Any:
        env = fn(profile, *args, **kwargs)
        EMULATED.append(profile.name)  # once made: the missing-QEMU error is not an emulated run
        return env

    made.__heavy__ = "QEMU runtime"  # type: ignore[attr-defined]
    module._qemu_env = made


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "tf_keras.src.engine.training": _keras_training,
    "tensorflow.lite.python.lite": _tflite_converters,
    "converters.onnx_tflite": _module_function("onnx_to_saved_model", "onnx2tf"),
    "tests.fixtures.common": _module_function("train_epochs", "torch training (fixture models)"),
    "devices.runtimes": _qemu_runtimes,
    "toolchain.quantization.speed": _module_function(
        "choose_by_speed", "mixed-precision speed choice", TIMED, made=True
    ),
}


class _PatchingLoader(importlib.abc.Loader):
    """The real loader, then the patch: the module is wrapped before any importer can bind its names."""

    def __init__(self, real: importlib.abc.Loader, patch: Callable[[ModuleType], None]) -> None:
        self.real, self.patch = real, patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.real.exec_module(module)
        self.patch(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... (tracebacks, autograph)
        return getattr(self.real, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


def install() -> None:
    """Wrap the heavy calls: now for modules already imported, on import for the others."""
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
    for name, patch in PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
