"""Knowledge distillation: train a small student on the teacher's softened outputs (and hard labels).

loss = (1 - alpha) * CE(hard labels) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
       [+ match_weight * MSE(teacher hidden, student hidden) for each matched layer pair]

The teacher is the current model of the chain, or a foreign teacher (`ctx.teacher`,
toolchain/steps/teachers.py:
ONNX, TFLite, Keras or a scores file, scoring the query texts with its own tokenizer; then `model` is None
and the student is built on the context's word-level tokenizer). Its logits (and matched hidden states) are
computed once for the whole training set and cached. Unlabelled queries (real query logs) join the training
set: the KL term uses them all, the CE term only where the teacher is confident (its top label as a
pseudo-label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.parameters import count_parameters
from toolchain.base.errors import StepError
from toolchain.base.tfenv import keras, tf
from toolchain.base.types import AugmentOrigin
from toolchain.data import load_queries
from toolchain.evaluation.metrics import softmax
from toolchain.recipe.steps import AugmentSpec, DistillStep
from toolchain.recipe.students import StudentSpec
from toolchain.sources.keras_inputs import rows
from toolchain.steps.augment import augmented, resolve_augment
from toolchain.steps.base import StepContext, StepResult
from toolchain.steps.log_scoring import score_log
from toolchain.steps.rare_intents import RareIntents, rare_intents
from toolchain.steps.student import (
    build_student,
    check_layer,
    load_student,
    logits_model,
    predict_logits,
)
from toolchain.steps.teacher_layers import init_student
from toolchain.steps.teachers import Teacher, teacher_encoder, teacher_logits
from toolchain.steps.training import EPOCH_HOOK, progress_callback


@dataclass
class DistillData:
    """Training rows with the cached teacher outputs."""

    x: Any  # id array, or a dict by input name (a BERT-tokenizer student)
    y: np.ndarray  # hard label (true, or the teacher's top label for unlabelled rows)
    ce_weight: np.ndarray  # 1: use the hard label, 0: soft targets only
    teacher_logits: np.ndarray
    teacher_hidden: list[np.ndarray]
    labelled: int
    unlabelled: int
    pseudo_labelled: int
    augmented: int = 0
    scoring: Any = None  # report.steps.LogScoring: how the teacher scored the unlabelled log
    augment: AugmentSpec | None = None  # the augmentation that made the `augmented` rows
    augment_origin: AugmentOrigin | None = None  # why it was on: the recipe's, or the default


def _encode(ctx: StepContext, texts: list[str], what: str, like: Any) -> Any:
    """Texts as the student takes them: an id array, or a dict by input name (a BERT-tokenizer student)."""
    if ctx.tokenizer is None:
        raise StepError(f"distill: no tokenizer to encode the {what}", hint="set data.vocab")
    ids = ctx.tokenizer.encode_batch(texts)
    if isinstance(like, dict):
        return {k: ids[k].astype(like[k].dtype) for k in like}
    return ids["input_ids"] if isinstance(ids, dict) else ids


def _concat(x: Any, extra: Any) -> Any:
    if isinstance(x, dict):
        return {k: np.concatenate([x[k], extra[k]]) for k in x}
    return np.concatenate([x, extra])


def prepare_data(cfg: DistillStep, teacher: Any, ctx: StepContext) -> DistillData:
    """Labelled train split + optional unlabelled queries + optional augmented copies, with the teacher's
    logits computed once. Unlabelled and augmented rows get soft targets, and the teacher's top label as a
    hard label where it is confident."""

    x, y = ctx.train_arrays()
    n_lab = rows(x)
    hidden = list(cfg.match_layers)
    texts = list(ctx.train_texts or [])
    aug, origin = resolve_augment(cfg.augment, ctx.teacher)
    if (cfg.unlabelled is not None or aug is not None) and isinstance(x, dict) and not ctx.teacher:
        raise StepError("distill: a multi-input teacher is not supported", hint="drop the distill step")
    n_unlab = 0
    if cfg.unlabelled is not None:
        queries = load_queries(cfg.unlabelled, label_field=None)
        x = _concat(x, _encode(ctx, queries.texts, "unlabelled queries", x))
        texts += queries.texts
        n_unlab = len(queries.texts)
    n_aug = 0
    if aug is not None and not texts and origin == AugmentOrigin.RECIPE:
        raise StepError("distill: augmentation needs the training query texts", hint="drop augment")
    if aug is not None and texts:
        extra = augmented(aug, texts, ctx.seed)
        x = _concat(x, _encode(ctx, extra, "augmented queries", x))
        texts += extra
        n_aug = len(extra)
    scoring = None
    if ctx.teacher is not None and n_unlab and _streams(ctx.teacher, cfg):
        outs, scoring = _sharded_logits(cfg, ctx.teacher, ctx, texts, n_lab, n_unlab)
    elif ctx.teacher is not None:
        what = "train" + " + unlabelled" * bool(n_unlab) + " + augmented" * bool(n_aug)
        outs = [teacher_logits(ctx.teacher, texts, ctx.progress, what)]
    else:
        with ctx.progress.task("distill: teacher logits (cached)", None):
            outs = predict_logits(teacher, x, hidden)
    logits = outs[0]
    probs = softmax(logits)
    pseudo = probs.argmax(-1).astype(np.int32)
    confident = probs.max(-1) >= cfg.pseudo_label_min_confidence
    y_all = np.concatenate([y, pseudo[n_lab:]]).astype(np.int32)
    w = np.concatenate([np.ones(n_lab, np.float32), confident[n_lab:].astype(np.float32)])
    pseudo_n = int(confident[n_lab:].sum())
    why = (aug, origin) if n_aug else (None, None)
    return DistillData(x, y_all, w, logits, outs[1:], n_lab, n_unlab, pseudo_n, n_aug, scoring, *why)


def _streams(teacher: Teacher, cfg: DistillStep) -> bool:
    """A model teacher scores a JSONL or text log in shards (a scores file is a lookup; CSV loads whole)."""
    assert cfg.unlabelled is not None
    return teacher.kind != "scores" and cfg.unlabelled.suffix.lower() != ".csv"


def _sharded_logits(
    cfg: DistillStep, teacher: Teacher, ctx: StepContext, texts: list[str], n_lab: int, n_unlab: int
) -> tuple[list[np.ndarray], Any]:
    """Train (+ augmented) texts scored as before; the unlabelled log by toolchain/steps/log_scoring.py."""
    assert cfg.unlabelled is not None
    spec = cfg.unlabelled_scoring
    scores, record = score_log(
        teacher, cfg.unlabelled, ctx.progress, spec.workers, spec.ray_address, spec.shard_rows
    )
    if scores.rows != n_unlab:
        raise StepError(
            f"distill: {cfg.unlabelled} has {n_unlab} queries as read for the student, "
            f"{scores.rows} as read for the teacher (a line break inside a query?)",
            hint="one query per line",
        )
    parts = [teacher_logits(teacher, texts[:n_lab], ctx.progress, "train")] if n_lab else []
    parts.append(scores.to_array())
    if len(texts) > n_lab + n_unlab:
        parts.append(teacher_logits(teacher, texts[n_lab + n_unlab :], ctx.progress, "augmented"))
    return [np.concatenate(parts).astype(np.float32)], record


def make_student(cfg: DistillStep, teacher: Any, ctx: StepContext) -> tuple[Any, list[dict[str, str]]]:
    """The student, and the tensors started from the teacher (`embedding_init: teacher`)."""
    if ctx.teacher is not None and cfg.student_path is not None:
        raise StepError(
            "distill: a foreign teacher trains a student built here on its own word-level vocab; "
            "a student_path file cannot take that vocab",
            hint="describe the student with `student: {embed_dim, layers}` instead of student_path",
        )
    seq_len = int(teacher.inputs[0].shape[1]) if getattr(teacher, "inputs", None) else ctx.tokenizer.seq_len
    n_labels = len(ctx.labels)
    keras().utils.set_random_seed(ctx.seed)
    if cfg.student_path is not None:
        return load_student(cfg.student_path, seq_len, n_labels, ctx.trust_model_code), []
    vocab = ctx.tokenizer.vocab_size if ctx.tokenizer is not None else None
    if vocab is None:  # fall back to the teacher's embedding table
        emb = [layer for layer in teacher.layers if layer.__class__.__name__ == "Embedding"]
        if not emb:
            raise StepError("distill: cannot tell the vocabulary size", hint="set data.vocab in the recipe")
        vocab = int(emb[0].input_dim)
    name = teacher.name if hasattr(teacher, "layers") and isinstance(teacher.name, str) else "student"
    names = tuple(ctx.train_x) if isinstance(ctx.train_x, dict) else ("input_ids",)
    spec = _spec(cfg)
    student = build_student(spec, vocab, seq_len, n_labels, name=name, input_names=names)
    if spec.embedding_init == "teacher":
        if ctx.teacher is None or cfg.student_tokenizer != "teacher":
            raise StepError(
                "distill: student.embedding_init teacher needs a foreign teacher and the student on its "
                "tokenizer (the same token ids)",
                hint="set student_tokenizer: teacher, or drop embedding_init",
            )
        return student, init_student(student, teacher_encoder(ctx.teacher, vocab), spec, ctx.seed)
    return student, []


def _spec(cfg: DistillStep) -> StudentSpec:
    try:
        return cfg.student_spec
    except ValueError:
        raise StepError(
            "distill: student auto tries several students and keeps the smallest that meets the gates; "
            "a single build cannot",
            hint="run `edgecomp convert` (or toolchain.search.auto.build_auto), or name a student",
        ) from None


def _check_matching(cfg: DistillStep, teacher: Any, student: Any) -> None:
    for t_name, s_name in cfg.match_layers.items():
        t_shape = tuple(check_layer(teacher, t_name, "teacher").output.shape[1:])
        s_shape = tuple(check_layer(student, s_name, "student").output.shape[1:])
        if t_shape != s_shape:
            raise StepError(
                f"distill: cannot match teacher {t_name} {t_shape} with student {s_name} {s_shape}",
                hint="hidden-state matching needs equal shapes; pick layers of the same width or drop it",
            )


def _distiller(cfg: DistillStep, student: Any, rare: RareIntents | None = None) -> Any:
    """A Keras model whose train_step computes the distillation loss on the student's weights; `rare`: the
    class-balanced and sure-hard-label terms (toolchain/steps/rare_intents.py), whose arrays then follow
    the teacher logits in the targets."""
    k = keras()
    T = float(cfg.temperature)  # noqa: N806 - the paper's name
    core, to_logits = logits_model(student, list(cfg.match_layers.values()))
    sure_weight = rare.sure_weight if rare is not None else 0.0

    class Distiller(k.Model):
        def __init__(self) -> None:
            super().__init__()
            self.core = core

        def call(self, x, training=False):
            return to_logits(self.core(x, training=training)[0] if cfg.match_layers else self.core(x))

        def train_step(self, data):
            if rare is None:
                x, (y, w, t_logits, *t_hidden) = data
            else:
                x, (y, w, t_logits, rw, t_top, sure, *t_hidden) = data
            t = tf()
            metrics = {}
            with t.GradientTape() as tape:
                outs = self.core(x, training=True)
                outs = outs if isinstance(outs, list) else [outs]
                s_logits = to_logits(outs[0])
                ce_rows = k.losses.sparse_categorical_crossentropy(y, s_logits, from_logits=True)
                p_t = t.nn.softmax(t_logits / T)
                log_p_s = t.nn.log_softmax(s_logits / T)
                log_p_t = t.nn.log_softmax(t_logits / T)
                if rare is None:
                    ce = t.reduce_sum(ce_rows * w) / t.maximum(t.reduce_sum(w), 1.0)
                    kd = t.reduce_mean(t.reduce_sum(p_t * (log_p_t - log_p_s), -1)) * T * T
                    loss = (1.0 - cfg.alpha) * ce + cfg.alpha * kd
                else:  # each row weighted by its intent's class weight (mean 1 over the data)
                    ce = t.reduce_sum(ce_rows * w * rw) / t.maximum(t.reduce_sum(w * rw), 1e-6)
                    kd_rows = t.reduce_sum(p_t * (log_p_t - log_p_s), -1)
                    kd = t.reduce_sum(kd_rows * rw) / t.reduce_sum(rw) * T * T
                    hard_rows = k.losses.sparse_categorical_crossentropy(t_top, s_logits, from_logits=True)
                    hard = t.reduce_sum(hard_rows * sure * rw) / t.maximum(t.reduce_sum(sure * rw), 1e-6)
                    loss = (1.0 - cfg.alpha) * ce + cfg.alpha * kd + sure_weight * hard
                    metrics["sure_ce"] = hard
                for s_h, t_h in zip(outs[1:], t_hidden, strict=True):
                    loss += cfg.match_weight * t.reduce_mean(t.square(s_h - t_h))
            variables = student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return {"loss": loss, "ce": ce, "kd": kd, **metrics}

    return Distiller()


def _best_val_callback(student: Any, val_x: Any, targets: np.ndarray | None, select: str = "") -> Any:
    """Keep the student weights of the epoch whose val predictions match `targets` best (the val labels,
    or the teacher's val predictions when selecting by agreement)."""
    k = keras()

    class BestVal(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best, self.weights, self.history = -1.0, None, []

        def on_epoch_end(self, epoch, logs=None):
            if targets is None:
                return
            pred = student.predict(val_x, batch_size=512, verbose=0).argmax(1)
            score = float(np.mean(pred == targets))
            self.history.append(round(score, 4))
            if score > self.best:
                self.best, self.weights = score, student.get_weights()
            hook = EPOCH_HOOK.get()
            if hook is not None:
                hook(epoch + 1, select, score)

    return BestVal()


def _teacher_val(cfg: DistillStep, teacher: Any, ctx: StepContext) -> np.ndarray | None:
    """The teacher's predicted labels on the val split (None without one)."""
    val = ctx.val_arrays()
    if val is None:
        return None
    if ctx.teacher is not None:
        if ctx.val_texts is None:
            return None
        return teacher_logits(ctx.teacher, ctx.val_texts, ctx.progress, "val").argmax(1)
    return predict_logits(teacher, val[0])[0].argmax(1)


def run(cfg: DistillStep, model: Any, ctx: StepContext) -> StepResult:
    """Distill the current model (teacher) into the recipe's student; returns the trained student."""
    teacher = model
    if ctx.teacher is not None and cfg.match_layers:
        raise StepError(
            f"distill: hidden-state matching needs a Keras teacher in the chain, not {ctx.teacher.kind}",
            hint="drop match_layers",
        )
    student, started = make_student(cfg, teacher, ctx)
    if ctx.teacher is None:
        _check_matching(cfg, teacher, student)
    data = prepare_data(cfg, teacher, ctx)
    k = keras()
    n_rows = rows(data.x)
    steps = int(np.ceil(n_rows / cfg.batch_size)) * cfg.epochs
    rare = rare_intents(
        cfg.class_balance,
        cfg.sure_label_weight,
        cfg.pseudo_label_min_confidence,
        data.y,
        softmax(data.teacher_logits),
        ctx.teacher is not None,
    )
    distiller = _distiller(cfg, student, rare)
    lr = k.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps, alpha=0.05)
    distiller.compile(optimizer=k.optimizers.Adam(learning_rate=lr))
    targets = (data.y, data.ce_weight, data.teacher_logits, *data.teacher_hidden)
    if rare is not None:
        targets = (*targets[:3], rare.row_weight, rare.sure_label, rare.sure, *data.teacher_hidden)
    ds = tf().data.Dataset.from_tensor_slices((data.x, targets))
    ds = ds.shuffle(n_rows, seed=ctx.seed, reshuffle_each_iteration=True).batch(cfg.batch_size)
    val = ctx.val_arrays()
    teacher_pred = _teacher_val(cfg, teacher, ctx)
    select = cfg.select_by if cfg.select_by != "auto" else ("agreement" if ctx.teacher else "accuracy")
    if select == "agreement" and val is not None and teacher_pred is None:
        raise StepError("distill: select_by agreement needs the val query texts", hint="use accuracy")
    val_targets = None if val is None else (teacher_pred if select == "agreement" else val[1])
    best = _best_val_callback(student, None if val is None else val[0], val_targets, select)
    with ctx.progress.task(f"distill (alpha {cfg.alpha}, T {cfg.temperature})", steps) as advance:
        hist = distiller.fit(ds, epochs=cfg.epochs, verbose=0, callbacks=[best, progress_callback(advance)])
    if best.weights is not None:
        student.set_weights(best.weights)
    teacher_val = student_val = agreement_val = None
    if val is not None:
        s_pred = student.predict(val[0], batch_size=512, verbose=0).argmax(1)
        student_val = float(np.mean(s_pred == val[1]))
        if teacher_pred is not None:
            teacher_val = float(np.mean(teacher_pred == val[1]))
            agreement_val = float(np.mean(s_pred == teacher_pred))
    if ctx.teacher is not None:
        t_params = ctx.teacher.parameters
    else:
        t_params = count_parameters(teacher) if hasattr(teacher, "count_params") else None
    s_params = count_parameters(student)
    report = {
        "alpha": cfg.alpha,
        "temperature": cfg.temperature,
        "student": _spec(cfg).model_dump(exclude_none=True)
        if cfg.student_path is None
        else str(cfg.student_path),
        "teacher": ctx.teacher.describe() if ctx.teacher is not None else "the chain's model",
        "teacher_parameters": t_params,
        "student_parameters": s_params,
        "parameter_ratio": round(t_params / s_params, 2) if t_params else None,
        "rows": {
            "labelled": data.labelled,
            "unlabelled": data.unlabelled,
            "augmented": data.augmented,
            "pseudo_labelled": data.pseudo_labelled,
        },
        "augment": data.augment.model_dump() if data.augment is not None else None,
        "selected_by": select,
        "matched_layers": dict(cfg.match_layers),
        "teacher_val_accuracy": round(teacher_val, 4) if teacher_val is not None else None,
        "student_val_accuracy": round(student_val, 4) if student_val is not None else None,
        "student_val_agreement": round(agreement_val, 4) if agreement_val is not None else None,
        f"val_{select}_per_epoch": best.history,
        "train_metrics": {k_: round(float(v[-1]), 4) for k_, v in hist.history.items()},
    }
    if data.augment_origin is not None:  # only then: other distill reports keep their keys
        report["augment_origin"] = data.augment_origin
    if data.scoring is not None:  # only then: other distill reports keep their keys
        report["unlabelled_scoring"] = data.scoring.to_json()
    if rare is not None:
        report["rare_intents"] = rare.describe()
    if started:  # only then: other distill reports keep their keys
        report["from_teacher"] = started
    warnings = []
    if t_params is not None and s_params >= t_params:
        warnings.append(
            f"distill: the student has {s_params:,} parameters, not fewer than the teacher's {t_params:,}: "
            "distillation compresses nothing here; name a smaller student"
        )
    if teacher_val and student_val is not None and student_val < 0.97 * teacher_val:
        warnings.append(
            f"distill: student keeps {student_val / teacher_val:.1%} of the teacher's val accuracy; "
            "try a wider student, more epochs or unlabelled queries"
        )
    return StepResult(model=student, report=report, warnings=warnings)
