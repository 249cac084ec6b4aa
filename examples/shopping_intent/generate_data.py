"""Deterministic generator of the shopping-intent dataset (no network, standard library only).

Each query is one of its intent's phrasing templates (catalog.TEMPLATES) filled from the catalog tables:
a product drawn from the taxonomy with one of its own brands and sizes, and a colour, material, feature,
category word, audience and price band from its department; order numbers, dates, cities, people, ... Then an
optional chatty frame ("hi, ...", "... please"), apostrophes dropped now and then ("wheres"), mixed case, and
a typo in one word for about 8% of queries. Queries are de-duplicated on their tokens (lower-cased,
punctuation stripped, as the on-device tokenizer sees them), and a typo'd or apostrophe-less variant counts
as its clean form; a query that two intents both produce is dropped from both. Each intent keeps PER_INTENT
queries, split 80/10/10 per intent; each split is ordered by the sha256 of its texts.

Only ``random.Random(seed)`` supplies randomness, and only lists (never sets) are iterated, so the output is
the same byte for byte in every process, whatever PYTHONHASHSEED is:

    python examples/shopping_intent/generate_data.py   # rewrites data/*.jsonl and labels.txt beside it
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import catalog as c  # noqa: E402

SEED = 13
PER_INTENT = 340  # 22 intents x 340 = 7,480 queries
SPLITS = ("train", "val", "test")
HOLDOUT = 0.10  # val and test each take this share of every intent
TYPO_RATE = 0.08
FRAME_RATE = {"search": 0.15, "other": 0.40}  # chance of a chatty prefix or suffix
MAX_WORDS = 25
GREETINGS = ("hi", "hello", "hey")  # queries that already greet get no greeting prefix
LABELS = list(c.LABELS)
KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_TOKEN_SPLIT = re.compile(r"[^\w']+", re.ASCII)  # the on-device tokenizer's delimiter (toolchain.data)


def _neighbours() -> dict[str, str]:
    """Letters next to each letter on a QWERTY keyboard (same row, and the keys above and below)."""
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


def _build_products() -> list[dict]:
    """Flatten the taxonomy: one entry per product with department, brands, grammatical form, size kind."""
    products = []
    for dept, info in c.DEPARTMENTS.items():
        for name, brands in info["products"].items():
            form = "plural" if name in c.PLURAL_NOUNS else "mass" if name in c.MASS_NOUNS else "count"
            sizes = c.SIZE_OVERRIDES.get(name, info["sizes"])
            products.append({"name": name, "dept": dept, "brands": brands, "form": form, "sizes": sizes})
    return products


PRODUCTS = _build_products()


def _pool(intent: str) -> list[dict]:
    """The products an intent's queries may mention (catalog.POOLS lists departments or product names)."""
    allowed = c.POOLS.get(intent)
    if allowed is None:
        return PRODUCTS
    return [p for p in PRODUCTS if p["dept"] in allowed or p["name"] in allowed]


POOL = {intent: _pool(intent) for intent in LABELS}
POOL_COLORED = {  # for templates with a {color} slot
    intent: [p for p in pool if p["dept"] not in c.COLORLESS and p["name"] not in c.COLORLESS]
    for intent, pool in POOL.items()
}


def plural(name: str, form: str) -> str:
    """'kettle' -> 'kettles', 'dress' -> 'dresses', 'jeans' and 'olive oil' unchanged."""
    if form != "count":
        return name
    if name in c.IRREGULAR_PLURALS:
        return c.IRREGULAR_PLURALS[name]
    if name.endswith(("s", "sh", "ch", "x")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def with_article(name: str, form: str) -> str:
    """'a kettle', 'an air fryer'; plural and mass nouns go bare ('jeans', 'olive oil')."""
    if form != "count":
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def order_number(rng: random.Random) -> str:
    """Order references as customers type them: '#A12345', '48889641', 'ord-512345', 'no. 10045'."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"#{rng.choice('ABCDEFGHKMNPRSTW')}{rng.randrange(10000, 100000)}"
    if kind == 1:
        return str(rng.randrange(10_000_000, 100_000_000))
    if kind == 2:
        return f"ord-{rng.randrange(100000, 1000000)}"
    if kind == 3:
        return f"#{rng.randrange(1000000, 10000000)}"
    return f"no. {rng.randrange(10000, 100000)}"


def amounts(dept: str) -> list[int]:
    """The catalog.AMOUNTS inside a department's price band."""
    low, high = c.PRICE_BANDS[dept]
    return [a for a in c.AMOUNTS if low <= a <= high]


def price_range(dept: str, rng: random.Random) -> str:
    """A price constraint: 'under $50', 'between $20 and $40', '50-100', 'below 30 dollars', ..."""
    band = amounts(dept)
    i = rng.randrange(len(band) - 1)
    low, high = band[i], band[rng.randrange(i + 1, min(i + 4, len(band)))]
    return rng.choice(c.PRICE_FORMS).format(a=low, b=high)


class Slots(dict):
    """Template slot values, drawn lazily (only the slots a template uses, left to right).

    The product is drawn up front so that brand, colour, size, ... can depend on its department.
    """

    def __init__(self, intent: str, rng: random.Random, colored: bool = False) -> None:
        super().__init__()
        self.rng = rng
        self.item = rng.choice(POOL_COLORED[intent] if colored else POOL[intent])
        self.dept = c.DEPARTMENTS[self.item["dept"]]

    def __missing__(self, key: str) -> str:
        value = self._draw(key)
        self[key] = value
        return value

    def _draw(self, key: str) -> str:
        rng, item, dept = self.rng, self.item, self.dept
        name, form, dept_name = item["name"], item["form"], item["dept"]
        product_bound = {
            "product": lambda: name,
            "products": lambda: plural(name, form),
            "a_product": lambda: with_article(name, form),
            "be": lambda: "are" if form == "plural" else "is",
            "does": lambda: "do" if form == "plural" else "does",
            "product2": lambda: rng.choice([p for p in dept["products"] if p != name]),
            "brand": lambda: rng.choice(item["brands"]),
            "brand2": lambda: rng.choice([b for b in item["brands"] if b != self["brand"]]),
            "color": lambda: rng.choice(c.COLORS),
            "material": lambda: rng.choice(c.MATERIAL_OVERRIDES.get(name, dept["materials"])),
            "feature": lambda: rng.choice(c.FEATURE_OVERRIDES.get(name, dept["features"])),
            "size": lambda: rng.choice(c.SIZE_KINDS[item["sizes"]]),
            "category": lambda: rng.choice(c.CATEGORY_WORDS[dept_name]),
            "audience": lambda: rng.choice(c.AUDIENCE[dept_name]),
            "price_range": lambda: price_range(dept_name, rng),
            "price": lambda: str(rng.choice(amounts(dept_name))),
        }
        if key in product_bound:
            return product_bound[key]()
        return self._draw_general(key)

    def _draw_general(self, key: str) -> str:
        rng = self.rng
        generated = {
            "order": lambda: order_number(rng),
            "percent": lambda: str(rng.choice([10, 15, 20, 25, 30, 40, 50, 60, 70])),
            "n1": lambda: str(rng.randrange(2, 13)),
            "n2": lambda: str(rng.randrange(2, 100)),
        }
        if key in generated:
            return generated[key]()
        tables = {
            "person": c.PEOPLE,
            "occasion": c.OCCASIONS,
            "event": c.EVENTS,
            "holiday": c.HOLIDAYS,
            "hobby": c.HOBBIES,
            "city": c.CITIES,
            "day": c.DAYS,
            "duration": c.DURATIONS,
            "weekday": c.WEEKDAYS,
            "payment": c.PAYMENTS,
            "carrier": c.CARRIERS,
            "country": c.COUNTRIES,
            "retailer": c.RETAILERS,
            "issue": c.ISSUES,
            "height": c.HEIGHTS,
            "team": c.TEAMS,
            "dish": c.DISHES,
            "language": c.LANGUAGES,
            "trivia": c.TRIVIA,
        }
        return rng.choice(tables[key])


def frame(text: str, intent: str, rng: random.Random) -> str:
    """Maybe wrap the query in a polite or chatty prefix and/or suffix."""
    rate = FRAME_RATE["search" if intent.startswith("product_search") else "other"]
    if rng.random() < rate and not text.startswith(GREETINGS):
        text = rng.choice(c.PREFIXES) + text
    if rng.random() < rate:
        suffix = rng.choice(c.SUFFIXES)
        if not (suffix[0] in "?!." and text[-1] in "?!."):
            text += suffix
    return text


def typo(text: str, rng: random.Random) -> str:
    """One realistic typo in one word of 4+ letters: neighbouring key, dropped, doubled or swapped letter."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    p = rng.randrange(1, len(w))
    kind = rng.randrange(4)
    if kind == 0 and w[p].lower() in NEAR:
        w = w[:p] + rng.choice(NEAR[w[p].lower()]) + w[p + 1 :]
    elif kind == 1:
        w = w[:p] + w[p + 1 :]
    elif kind == 2:
        w = w[:p] + w[p] + w[p:]
    elif w[p - 1] != w[p]:
        w = w[: p - 1] + w[p] + w[p - 1] + w[p + 1 :]
    else:
        w = w[:p] + w[p + 1 :]
    words[i] = w
    return " ".join(words)


def restyle(text: str, rng: random.Random) -> str:
    """Casual spelling and mixed case: drop apostrophes sometimes, capitalise a share of queries."""
    if "'" in text and rng.random() < 0.2:
        text = re.sub(r"(?<=[a-z])'(?=[a-z])", "", text)  # where's -> wheres, don't -> dont
    roll = rng.random()
    if roll < 0.14:
        return text[:1].upper() + text[1:]
    if roll < 0.20:
        return re.sub(r"\bi\b", "I", text[:1].upper() + text[1:])
    if roll < 0.25:
        return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    if roll < 0.27:
        return text.upper()
    return text


def tokens_key(text: str) -> str:
    """The query as the tokenizer sees it: lower-cased words, punctuation dropped. Used to de-duplicate."""
    return " ".join(t for t in _TOKEN_SPLIT.split(text.lower()) if t)


def make_query(intent: str, rng: random.Random) -> tuple[str, str]:
    """One query for an intent: template, slots, frame, typo, casing; at most MAX_WORDS words.

    Returns (text, clean): clean is the query before typo and restyling, for de-duplication.
    """
    template = rng.choice(c.TEMPLATES[intent])
    core = template.format_map(Slots(intent, rng, colored="{color}" in template))
    clean = frame(core, intent, rng)
    if len(clean.split()) > MAX_WORDS:
        clean = core
    text = typo(clean, rng) if rng.random() < TYPO_RATE else clean
    return restyle(text, rng), clean


def candidates(intent: str, rng: random.Random, wanted: int) -> list[tuple[tuple[str, str], str]]:
    """Up to `wanted` ((key, clean key), text) pairs, in generation order.

    A query is new only if neither its own tokens nor those of its clean form were seen before, so
    "wheres my order", "where's my ordr" and "Where's my order?" count as one query.
    """
    seen: dict[str, None] = {}
    found: list[tuple[tuple[str, str], str]] = []
    attempts = 0
    while len(found) < wanted and attempts < wanted * 60:
        attempts += 1
        text, clean = make_query(intent, rng)
        keys = (tokens_key(text), tokens_key(clean))
        if keys[0] not in seen and keys[1] not in seen:
            seen.update(dict.fromkeys(keys))
            found.append((keys, text))
    return found


def _digest(seed: int, text: str) -> str:
    """Sort key for the output order: sha256 of seed and text."""
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def split_rows(rows: list[dict], rng: random.Random) -> dict[str, list[dict]]:
    """Stratified 80/10/10 split of one intent's rows (shuffled with the seeded generator first)."""
    rows = rows[:]
    rng.shuffle(rows)
    n_hold = round(len(rows) * HOLDOUT)
    return {"test": rows[:n_hold], "val": rows[n_hold : 2 * n_hold], "train": rows[2 * n_hold :]}


def check_catalog() -> None:
    """Fail early on an inconsistent catalog (templates per intent, brands per product, size kinds)."""
    problems = []
    if list(c.TEMPLATES) != LABELS or len(set(LABELS)) != len(LABELS):
        problems.append("catalog.TEMPLATES must have one entry per label, in catalog.LABELS order")
    problems += [f"{i}: fewer than 12 templates" for i in LABELS if len(c.TEMPLATES.get(i, [])) < 12]
    problems += [f"{p['name']}: needs 2+ brands" for p in PRODUCTS if len(p["brands"]) < 2]
    problems += [f"{p['name']}: unknown size kind" for p in PRODUCTS if p["sizes"] not in c.SIZE_KINDS]
    if problems:
        raise ValueError("; ".join(problems))


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    """All three splits: {"train": [...], "val": [...], "test": [...]}, rows {"text": ..., "intent": ...}."""
    check_catalog()
    rng = random.Random(seed)
    pools = {intent: candidates(intent, rng, PER_INTENT + 60) for intent in LABELS}
    owners: dict[str, list[str]] = {}
    for intent in LABELS:
        for keys, _ in pools[intent]:
            for key in dict.fromkeys(keys):
                owners.setdefault(key, []).append(intent)
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for intent in LABELS:
        unique = [text for keys, text in pools[intent] if all(len(owners[k]) == 1 for k in keys)]
        if len(unique) < PER_INTENT:
            raise ValueError(f"{intent}: only {len(unique)} distinct queries, need {PER_INTENT}")
        rows = [{"text": text, "intent": intent} for text in unique[:PER_INTENT]]
        for name, part in split_rows(rows, rng).items():
            splits[name] += part
    for name in SPLITS:  # a fixed order that mixes intents: by content hash, not by generation order
        splits[name].sort(key=lambda r: (_digest(seed, r["text"]), r["text"]))
    return splits


def write_outputs(splits: dict[str, list[dict]], out_dir: Path = HERE) -> list[Path]:
    """Write data/{train,val,test}.jsonl and labels.txt (UTF-8, '\\n' line ends); returns the paths."""
    (out_dir / "data").mkdir(exist_ok=True)
    paths = []
    for name in SPLITS:
        path = out_dir / "data" / f"{name}.jsonl"
        rows = [{"text": r["text"], "intent": r["intent"]} for r in splits[name]]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    labels = out_dir / "labels.txt"
    labels.write_bytes(("\n".join(LABELS) + "\n").encode("utf-8"))
    return [*paths, labels]


def main() -> int:
    splits = generate()
    write_outputs(splits)
    counts = {name: len(rows) for name, rows in splits.items()}
    print(f"{len(LABELS)} intents, {sum(counts.values())} queries: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
