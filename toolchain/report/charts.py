"""Inline SVG charts for report.html: no script, no font or file fetched; colours come from the page's CSS.

Every chart is a string of SVG markup with escaped text; a chart is a picture of numbers the page also
prints in a table beside it, so nothing is only in the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

LABEL_W = 250  # px for the row labels
BAR_W = 300  # px for the longest bar
VALUE_W = 130  # px for the printed value
ROW_H = 20
NARROW = (170, 170, 70)  # label, bar, value widths of a chart in a half-width column


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # >= 0 for `bars`, signed for `diverging`
    text: str  # the value as printed beside the bar
    tone: str = "a"  # CSS class suffix: a (accent), b (second series), bad, good, muted


def _label(text: str, limit: int = LABEL_W // 8) -> str:
    """At most `limit` characters (about 8 px each at the labels' 12 px), cut with an ellipsis."""
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def bars(
    rows: list[Bar], top: float | None = None, title: str = "", widths: tuple[int, int, int] | None = None
) -> str:
    """Horizontal bars from 0 to `top` (default: the largest value); one row each."""
    if not rows:
        return ""
    label_w, bar_w, value_w = widths or (LABEL_W, BAR_W, VALUE_W)
    top = top if top is not None and top > 0 else max((r.value for r in rows), default=1.0) or 1.0
    h = ROW_H * len(rows) + 6
    w = label_w + bar_w + value_w
    out = [f'<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    for i, r in enumerate(rows):
        y = 3 + i * ROW_H
        length = max(0.0, min(1.0, r.value / top)) * bar_w
        out += [
            f'<text x="{label_w - 6}" y="{y + 14}" class="lbl">{_label(r.label, label_w // 8)}<title>'
            f"{escape(r.label)}</title></text>",
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{ROW_H - 6}" '
            f'class="bar-{r.tone}"/>',
            f'<text x="{label_w + length + 4:.1f}" y="{y + 14}" class="val">{escape(r.text)}</text>',
        ]
    out.append("</svg>")
    return "".join(out)


def diverging(rows: list[Bar], limit: float | None = None, title: str = "") -> str:
    """Bars left (negative, `bad`) or right (positive, `good`) of a zero line; zero rows get a tick."""
    if not rows:
        return ""
    limit = limit or max((abs(r.value) for r in rows), default=1.0) or 1.0
    half = BAR_W / 2
    h = ROW_H * len(rows) + 6
    w = LABEL_W + BAR_W + VALUE_W
    zero = LABEL_W + half
    out = [f'<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    out.append(f'<line x1="{zero}" y1="0" x2="{zero}" y2="{h}" class="axis"/>')
    for i, r in enumerate(rows):
        y = 3 + i * ROW_H
        length = max(-1.0, min(1.0, r.value / limit)) * half
        x = zero + min(0.0, length)
        tone = "bad" if r.value < 0 else "good" if r.value > 0 else "muted"
        out += [
            f'<text x="{LABEL_W - 6}" y="{y + 14}" class="lbl">{_label(r.label)}<title>{escape(r.label)}'
            "</title></text>",
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(abs(length), 1.0):.1f}" height="{ROW_H - 6}" '
            f'class="bar-{tone}"/>',
            f'<text x="{LABEL_W + BAR_W + 4}" y="{y + 14}" class="val">{escape(r.text)}</text>',
        ]
    out.append("</svg>")
    return "".join(out)


def stacked(parts: list[Bar], title: str = "") -> str:
    """One bar split into parts in proportion (`value` >= 0), with a legend row under it."""
    total = sum(p.value for p in parts) or 1.0
    w = LABEL_W + BAR_W + VALUE_W
    out = [f'<svg class="chart" role="img" viewBox="0 0 {w} 58" width="{w}" height="58">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    x = 0.0
    legend_x = 0
    for i, p in enumerate(parts):
        width = p.value / total * w
        out.append(
            f'<rect x="{x:.2f}" y="4" width="{width:.2f}" height="22" class="part-{i % 8}">'
            f"<title>{escape(p.label)}: {escape(p.text)}</title></rect>"
        )
        x += width
        if p.value > 0:
            out += [
                f'<rect x="{legend_x}" y="36" width="10" height="10" class="part-{i % 8}"/>',
                f'<text x="{legend_x + 14}" y="45" class="key">{escape(p.label)}</text>',
            ]
            legend_x += 22 + 7 * len(p.label)
    out.append("</svg>")
    return "".join(out)
