"""Deterministic generator of the shopping-intent dataset (no network, standard library only).

Each query is an intent's phrasing template (catalog.TEMPLATES) filled from the catalog tables (products,
brands, colours, materials, sizes and units, prices, order numbers, cities, ...), wrapped in an optional polite
or chatty frame, then given realistic noise: mixed case, and a typo in one word for about 8% of queries.
Queries are de-duplicated case-insensitively, then split 80/10/10 per intent.

    python examples/shopping_intent/generate_data.py   # rewrites data/*.jsonl and labels.txt next to this file
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import catalog as c  # noqa: E402

SEED = 13
PER_INTENT = 340
TYPO_RATE = 0.08
LABELS = list(c.TEMPLATES)
PRICES = [10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 99, 100, 120, 150, 200, 250, 300, 500, 800, 1000]
KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours() -> dict[str, str]:
    near: dict[str, str] = {}
    for r, row in enumerate(KEYBOARD):
        for i, ch in enumerate(row):
            chars = row[max(0, i - 1) : i] + row[i + 1 : i + 2]
            for other in (r - 1, r + 1):
                if 0 <= other < len(KEYBOARD):
                    chars += KEYBOARD[other][i : i + 1]
            near[ch] = chars
    return near


NEAR = _neighbours()


def order_number(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"#{rng.choice('ABCDEFGH')}{rng.randrange(10000, 99999)}"
    if kind == 1:
        return str(rng.randrange(10_000_000, 99_999_999))
    if kind == 2:
        return f"ord-{rng.randrange(100000, 999999)}"
    return f"number {rng.randrange(1000, 9999)}"


def fill(template: str, rng: random.Random) -> str:
    """Fill every {slot} of a template from the catalog tables."""
    product, product2 = rng.sample(c.PRODUCTS, 2)
    brand, brand2 = rng.sample(c.BRANDS, 2)
    price = rng.choice(PRICES)
    slots = {
        "product": product, "product2": product2, "brand": brand, "brand2": brand2,
        "color": rng.choice(c.COLORS), "material": rng.choice(c.MATERIALS), "feature": rng.choice(c.FEATURES),
        "size": rng.choice(c.SIZES), "audience": rng.choice(c.AUDIENCE), "price": str(price),
        "price2": str(price + rng.choice([10, 20, 50, 100])), "category": rng.choice(c.CATEGORY_WORDS),
        "person": rng.choice(c.PEOPLE), "occasion": rng.choice(c.OCCASIONS), "city": rng.choice(c.CITIES),
        "day": rng.choice(c.DAYS), "order": order_number(rng), "payment": rng.choice(c.PAYMENTS),
        "carrier": rng.choice(c.CARRIERS), "country": rng.choice(c.COUNTRIES),
        "percent": str(rng.choice([10, 15, 20, 25, 30, 40, 50, 70])),
    }
    return template.format(**slots)


def typo(text: str, rng: random.Random) -> str:
    """One realistic typo in one word of 4+ letters: neighbour key, dropped, doubled or swapped letter."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(4)
    if kind == 0 and w[p].lower() in NEAR:
        w = w[:p] + rng.choice(NEAR[w[p].lower()]) + w[p + 1 :]
    elif kind == 1:
        w = w[:p] + w[p + 1 :]
    elif kind == 2:
        w = w[:p] + w[p] + w[p:]
    else:
        w = w[: p - 1] + w[p] + w[p - 1] + w[p + 1 :]
    words[i] = w
    return " ".join(words)


def casing(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.12:
        return text[:1].upper() + text[1:]
    if roll < 0.17:
        return text.title()
    if roll < 0.19:
        return text.upper()
    return text


def make_query(intent: str, rng: random.Random) -> str:
    core = fill(rng.choice(c.TEMPLATES[intent]), rng)
    text = rng.choice(c.WRAPPERS).format(q=core)
    if rng.random() < TYPO_RATE:
        text = typo(text, rng)
    return casing(text, rng)


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    """All three splits: {"train": [...], "val": [...], "test": [...]}, rows {"text", "intent"}."""
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for intent in LABELS:
        rows: list[dict] = []
        attempts = 0
        while len(rows) < PER_INTENT and attempts < PER_INTENT * 50:
            attempts += 1
            text = make_query(intent, rng)
            key = text.lower()
            if key not in seen:
                seen.add(key)
                rows.append({"text": text, "intent": intent})
        n_val = n_test = len(rows) // 10
        splits["test"] += rows[:n_test]
        splits["val"] += rows[n_test : n_test + n_val]
        splits["train"] += rows[n_test + n_val :]
    for name in splits:
        rng.shuffle(splits[name])
    return splits


def main() -> int:
    splits = generate()
    (HERE / "data").mkdir(exist_ok=True)
    for name, rows in splits.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (HERE / "data" / f"{name}.jsonl").write_text(text, encoding="utf-8")
    (HERE / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    counts = {k: len(v) for k, v in splits.items()}
    print(f"{len(LABELS)} intents, {sum(counts.values())} queries: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
