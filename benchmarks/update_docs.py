"""Paste benchmarks/results/*.md into docs/benchmarks.md's <!-- BENCH:name --> slots (after `make bench`)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    page = ROOT / "docs" / "benchmarks.md"
    text = page.read_text()
    names = (
        "convert",
        "compress",
        "int4",
        "onnx",
        "transformer",
        "distill",
        "distill_auto",
        "rare_intents",
        "profile",
        "search",
        "retrieval",
        "log_scoring",
        "vocab_trim",
        "vocab_trim_spm",
        "minilm",
        "minilm_classifier",
    )
    for name in (
        *names,
        "acceptance_hub",
        "acceptance_multilingual",
        "acceptance_distill_auto",
        "acceptance_distill_auto_minilm",
        "acceptance_distill_auto_30k",
        "acceptance_distill_auto_tiny_bert",
    ):
        result = ROOT / "benchmarks" / "results" / f"{name}.md"
        if not result.is_file():
            continue
        block = f"<!-- BENCH:{name} -->\n{result.read_text().strip()}\n<!-- /BENCH:{name} -->"
        # up to the slot's end marker; a slot without one ends at the next section
        end = rf"<!-- /BENCH:{name} -->" if f"<!-- /BENCH:{name} -->" in text else r"(?=\n\n## )"
        pattern = re.compile(rf"<!-- BENCH:{name} -->.*?{end}", re.S)
        text = pattern.sub(lambda _m, b=block: b, text, count=1)
    page.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
