"""report.html's charts without a browser or a build: they escape what they draw and clamp their bars."""

from __future__ import annotations

from html.parser import HTMLParser

from toolchain.report.charts import Bar, bars, diverging, stacked


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)


def test_charts_escape_labels_and_clamp_bars():
    hostile = '<script>alert("x")</script>'
    svg = bars([Bar(hostile, 2.0, "200%"), Bar("ok", -1.0, "-")], top=1.0)
    parsed = _Tags()
    parsed.feed(svg + diverging([Bar(hostile, -3.0, "-3 pt")]) + stacked([Bar(hostile, 1.0, "1 B")]))
    assert "script" not in parsed.tags and "&lt;script&gt;" in svg
    assert 'width="300.0"' in svg and 'width="0.0"' in svg  # 200% clamps to the full bar, -1 to none
    assert bars([]) == "" and diverging([]) == ""
