"""The base of every typed result that is written as JSON (report.json sections, device results).

A record declares every key it can hold: an undeclared key is a validation error, so a producer and the
schema cannot drift apart silently. It is written with `exclude_unset`: a key the producer left out stays
out, a key it set to null stays null, so report.json reads as it did when the sections were dicts (a
container field with a default factory always counts as set, since it is filled after construction); keys
that are not Python names (`from`) are written by their alias.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """A typed piece of a JSON document edgecomp writes (a report section or anything nested in one)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def model_post_init(self, context: Any, /) -> None:
        """A field with a default factory (a list or a record that the producer fills in place after
        construction) counts as set: filling it does not mark it, and it must not vanish from the JSON."""
        for name, field in type(self).model_fields.items():
            if field.default_factory is not None:
                self.__pydantic_fields_set__.add(name)

    def to_json(self) -> dict[str, Any]:
        """This record as the JSON document holds it (only the keys that were set)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)
