"""Deterministic generator of the product-retrieval example: a catalog and a query -> click log.

The catalog reuses the shopping example's taxonomy (examples/shopping_intent/catalog.py): each product is a
product type of one department with one of that type's own brands, and optionally a colour, material and
feature from its department, a size of its size kind and a price inside the department's band (the price
band, budget / mid / premium, is the third of the band's log range it falls in). Titles are unique.

The interaction log: a product is drawn by popularity (Zipf, exponent ZIPF over a seeded random rank), and a
shopper's query describes it: the product type (or its plural, or the department's category word), plus a
random subset of brand, colour, material, feature, price constraint and audience; then the shopping
example's mixed case and typos. Queries are ambiguous on purpose (many products are "black nike hoodie"),
so the clicked product is among several matching ones and recall@10 is meaningful. NOISE of the clicks go
to a random product of the same type (a shopper who clicked something else). Rows are split by the query's
tokens (lower-cased, as the tokenizer sees them) 80/10/10 through a seeded hash, so no test query string
is in train; products never clicked in train stay in the catalog (their scores are learnt from nothing).

Only ``random.Random(seed)`` supplies randomness and only lists are iterated: same output byte for byte.

    python examples/product_retrieval/generate_data.py                  # 3,000 products, beside this file
    python examples/product_retrieval/generate_data.py --products 300 --out /tmp/small   # the CI size
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHOPPING = HERE.parent / "shopping_intent"
sys.path.insert(0, str(SHOPPING))
import catalog as c  # noqa: E402


def _shopping_generator():  # noqa: ANN202 - the shopping example's generate_data module
    """The shopping example's generator (its flattened taxonomy, plural, typo, restyle, tokens_key)."""
    spec = importlib.util.spec_from_file_location("shopping_generate_data", SHOPPING / "generate_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shop = _shopping_generator()

SEED = 17
PRODUCTS = 3000
CLICKS_PER_PRODUCT = 8  # log size: products x this
ZIPF = 1.0
NOISE = 0.05
TYPO_RATE = 0.06
SPLITS = ("train", "val", "test")
HOLDOUT = 0.10  # val and test each take this share of the distinct queries
BANDS = ("budget", "mid", "premium")
LABEL_FIELD = "product_id"


def _attributes(kind: dict, rng: random.Random) -> dict:
    """One product of a product type: brand always, the rest optional, price inside the band."""
    info = c.DEPARTMENTS[kind["dept"]]
    name, dept = kind["name"], kind["dept"]
    colorless = name in c.COLORLESS or dept in c.COLORLESS
    low, high = c.PRICE_BANDS[dept]
    price = round(math.exp(rng.uniform(math.log(low), math.log(high))), 2)
    band = BANDS[min(2, int(3 * (math.log(price) - math.log(low)) / (math.log(high) - math.log(low))))]
    materials = c.MATERIAL_OVERRIDES.get(name, info["materials"])
    features = c.FEATURE_OVERRIDES.get(name, info["features"])
    return {
        "type": name,
        "category": dept,
        "brand": rng.choice(kind["brands"]),
        "color": rng.choice(c.COLORS) if not colorless and rng.random() < 0.7 else None,
        "material": rng.choice(materials) if rng.random() < 0.5 else None,
        "feature": rng.choice(features) if rng.random() < 0.4 else None,
        "size": rng.choice(c.SIZE_KINDS[kind["sizes"]]) if rng.random() < 0.3 else None,
        "price": price,
        "price_band": band,
        "form": kind["form"],
    }


def title(p: dict) -> str:
    words = [p["brand"], p["feature"], p["color"], p["material"], p["type"]]
    text = " ".join(w for w in words if w)
    return f"{text}, {p['size']}" if p["size"] else text


def build_catalog(n: int, rng: random.Random) -> list[dict]:
    """n products with unique titles, ids p00000.. in catalog order."""
    kinds, products, seen = shop.PRODUCTS, [], set()
    attempts = 0
    while len(products) < n:
        attempts += 1
        if attempts > 50 * n:
            raise ValueError(f"cannot draw {n} distinct products from the taxonomy")
        p = _attributes(rng.choice(kinds), rng)
        if title(p) in seen:
            continue
        seen.add(title(p))
        products.append({"id": f"p{len(products):05d}", "title": title(p), **p})
    return products


def _price_words(p: dict, rng: random.Random) -> str:
    above = [a for a in shop.amounts(p["category"]) if a >= p["price"]]
    if not above:
        return ""
    return rng.choice(("under ${a}", "under {a}", "below {a} dollars", "less than {a}")).format(a=above[0])


def make_query(p: dict, rng: random.Random) -> str:
    """A shopper's words for product p: its type plus a random subset of its attributes."""
    noun = p["type"] if rng.random() < 0.6 else shop.plural(p["type"], p["form"])
    if rng.random() < 0.08:
        noun = rng.choice(c.CATEGORY_WORDS[p["category"]])
    words = []
    for key, chance in (("brand", 0.55), ("feature", 0.5), ("color", 0.5), ("material", 0.4)):
        if p[key] and rng.random() < chance:
            words.append(p[key])
    rng.shuffle(words)
    if p["brand"] in words and rng.random() < 0.7:  # brands usually come first
        words.remove(p["brand"])
        words.insert(0, p["brand"])
    text = " ".join([*words, noun])
    if p["size"] and rng.random() < 0.25:
        text += f" {p['size']}"
    if rng.random() < 0.15:
        text += f" for {rng.choice(c.AUDIENCE[p['category']])}"
    if rng.random() < 0.2:
        price = _price_words(p, rng) if rng.random() < 0.6 else f"{p['price_band']}"
        text = f"{text} {price}".strip() if price != "mid" else text
    if rng.random() < TYPO_RATE:
        text = shop.typo(text, rng)
    return shop.restyle(text, rng)


def popularity(n: int, rng: random.Random) -> list[float]:
    """Zipf weights over a seeded random ranking of the products."""
    ranks = list(range(n))
    rng.shuffle(ranks)
    return [1.0 / (r + 1) ** ZIPF for r in ranks]


def _bucket(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def generate(n: int = PRODUCTS, seed: int = SEED) -> tuple[list[dict], dict[str, list[dict]]]:
    """(catalog, {split: rows}); rows are {"text", "product_id"}, split by query tokens."""
    rng = random.Random(seed)
    products = build_catalog(n, rng)
    weights = popularity(n, rng)
    by_type: dict[str, list[dict]] = {}
    for p in products:
        by_type.setdefault(p["type"], []).append(p)
    clicked = rng.choices(products, weights=weights, k=n * CLICKS_PER_PRODUCT)
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for p in clicked:
        text = make_query(p, rng)
        target = rng.choice(by_type[p["type"]]) if rng.random() < NOISE else p
        u = _bucket(seed, shop.tokens_key(text))
        name = "test" if u < HOLDOUT else "val" if u < 2 * HOLDOUT else "train"
        splits[name].append({"text": text, LABEL_FIELD: target["id"]})
    return products, splits


def write_outputs(products: list[dict], splits: dict[str, list[dict]], out_dir: Path) -> list[Path]:
    """catalog.jsonl, labels.txt (product ids, the model's output order), data/{train,val,test}.jsonl."""
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    paths = []

    def write(path: Path, lines: list[str]) -> None:
        path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
        paths.append(path)

    keys = ("id", "title", "category", "type", "brand", "color", "material", "feature", "size", "price")
    write(
        out_dir / "catalog.jsonl",
        [json.dumps({k: p[k] for k in (*keys, "price_band")}, ensure_ascii=False) for p in products],
    )
    write(out_dir / "labels.txt", [p["id"] for p in products])
    for name in SPLITS:
        write(out_dir / "data" / f"{name}.jsonl", [json.dumps(r, ensure_ascii=False) for r in splits[name]])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=PRODUCTS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    products, splits = generate(args.products, args.seed)
    write_outputs(products, splits, args.out)
    counts = {name: len(rows) for name, rows in splits.items()}
    clicked = {r[LABEL_FIELD] for r in splits["train"]}
    print(
        f"{len(products)} products ({len(products) - len(clicked)} never clicked in train), "
        f"{sum(counts.values())} queries: {counts} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
