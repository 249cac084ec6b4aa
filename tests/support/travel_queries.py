"""A labelled query file that is not the shipped example: a travel assistant's six intents, from templates.

Deterministic (random.Random(seed) only, lists only). Each query is one of its intent's phrasings with its
slots filled (cities, dates, airlines, flight numbers, hotel words), now and then in upper case or with a
trailing "please" / "?": the kind of file a user exports from a labelling tool. Queries repeat no earlier
query's tokens, so the file passes `edgecomp data` without --dedupe.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from toolchain.data import split_words

TEMPLATES: dict[str, list[str]] = {
    "book_flight": [
        "book a flight to {city}",
        "i need a plane ticket from {city} to {city2}",
        "find me flights to {city} on {date}",
        "cheapest flight from {city} to {city2}",
        "one way ticket to {city} {date}",
        "reserve a seat on the {airline} flight to {city}",
        "fly to {city} next {date}",
    ],
    "book_hotel": [
        "hotel in {city} for {n} nights",
        "book a room in {city}",
        "find a cheap hotel near {city} airport",
        "i need accommodation in {city} on {date}",
        "reserve a double room in {city} for {date}",
        "any hostels in {city} with free breakfast",
        "{stars} star hotel in {city}",
    ],
    "cancel_trip": [
        "cancel my booking {code}",
        "i want to cancel my flight to {city}",
        "cancel reservation {code} please",
        "how do i cancel my hotel in {city}",
        "get a refund for my trip to {city}",
        "can i cancel the {airline} ticket without a fee",
    ],
    "flight_status": [
        "is flight {flight} on time",
        "status of {flight}",
        "has the {airline} flight from {city} landed",
        "when does flight {flight} depart",
        "is my flight to {city} delayed",
        "which gate does {flight} leave from",
    ],
    "baggage": [
        "how many bags can i take on {airline}",
        "baggage allowance for {airline}",
        "can i bring a {item} in my carry on",
        "how much does an extra suitcase cost on {airline}",
        "my luggage did not arrive in {city}",
        "weight limit for checked bags on {airline}",
    ],
    "weather": [
        "weather in {city} on {date}",
        "will it rain in {city} {date}",
        "how hot is it in {city} right now",
        "forecast for {city} this weekend",
        "do i need an umbrella in {city}",
        "is it snowing in {city}",
    ],
}
SLOTS: dict[str, list[str]] = {
    "city": [
        "paris",
        "rome",
        "tokyo",
        "lisbon",
        "berlin",
        "madrid",
        "oslo",
        "cairo",
        "lima",
        "dublin",
        "vienna",
        "prague",
        "athens",
        "boston",
        "denver",
        "sydney",
    ],
    "date": [
        "monday",
        "tuesday",
        "friday",
        "saturday",
        "sunday",
        "tomorrow",
        "june 3",
        "july 14",
        "august 21",
        "december 24",
        "next week",
        "the weekend",
    ],
    "airline": ["lufthansa", "ryanair", "delta", "klm", "emirates", "easyjet", "iberia", "qantas"],
    "item": ["laptop", "stroller", "guitar", "bike", "umbrella", "drone", "power bank", "surfboard"],
    "stars": ["3", "4", "5", "three", "four", "five"],
}


def _fill(template: str, rng: random.Random) -> str:
    values = {name: rng.choice(options) for name, options in SLOTS.items()}
    values["city2"] = rng.choice([c for c in SLOTS["city"] if c != values["city"]])
    values["n"] = str(rng.randint(2, 14))
    values["code"] = f"{rng.choice('ABCDEFGHJK')}{rng.randint(10000, 99999)}"
    values["flight"] = f"{rng.choice(['LH', 'FR', 'DL', 'KL', 'EK'])}{rng.randint(100, 9999)}"
    text = template.format(**values)
    style = rng.random()
    if style < 0.1:
        text = text.upper()
    elif style < 0.2:
        text += " please"
    elif style < 0.3:
        text = text.capitalize() + "?"
    return text


def travel_queries(per_intent: int = 60, seed: int = 7) -> list[dict[str, str]]:
    """`per_intent` distinct queries per intent, shuffled, as {"query", "label"} rows (not our names)."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    for label, templates in TEMPLATES.items():
        kept = 0
        while kept < per_intent:
            text = _fill(rng.choice(templates), rng)
            key = tuple(split_words(text))
            if key in seen:
                continue
            seen.add(key)
            rows.append({"query": text, "label": label})
            kept += 1
    rng.shuffle(rows)
    return rows


def write_travel_queries(path: Path, per_intent: int = 60, seed: int = 7) -> Path:
    """The queries as JSONL (.jsonl) or CSV (.csv, columns query,label)."""
    rows = travel_queries(per_intent, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["query", "label"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
