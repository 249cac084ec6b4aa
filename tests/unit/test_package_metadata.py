"""Package metadata comes from the user's recipe or flags; edgecomp never claims authorship or a licence."""

from __future__ import annotations

from types import SimpleNamespace

from toolchain.package.packager import _resolved as resolved
from toolchain.package.packager import default_description, unset_fields_notice
from toolchain.package.types import PackageOptions
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.schema import PackageSpec

LABELS = ["order_status", "returns", "product_search", "out_of_scope"]


def _build(package: dict | None = None, labels: list[str] | None = LABELS) -> SimpleNamespace:
    recipe = recipe_from_dict(
        {"name": "shop-intents", "source": {"path": "m.keras"}, "package": package or {}}
    )
    out = SimpleNamespace(shape=(1, len(labels) if labels else 32))
    return SimpleNamespace(recipe=recipe, labels=labels, tflite=SimpleNamespace(tensors=[out], outputs=[0]))


def test_the_recipe_has_no_author_licence_or_generic_description_by_default():
    spec = PackageSpec()
    assert spec.author is None and spec.license is None and spec.description is None


def test_unset_fields_stay_unset_and_the_description_describes_the_model():
    values = resolved(_build(), PackageOptions())
    assert values.author is None and values.license is None
    assert values.description == (
        "shop-intents: classifies a search query into one of 4 intents (order_status, returns, "
        "product_search, ...)."
    )
    assert "edgecomp" not in str(values) and "Apache" not in str(values)
    assert unset_fields_notice(values) == (
        "package metadata: author and license not set, so left out of the package "
        "(set package.author / package.license in the recipe, or pass --author / --license)"
    )


def test_recipe_values_land_and_flags_win():
    package = {"author": "search team", "license": "MIT", "description": "Routes shop queries."}
    values = resolved(_build(package), PackageOptions())
    assert (values.author, values.license, values.description) == (
        "search team",
        "MIT",
        "Routes shop queries.",
    )
    assert unset_fields_notice(values) is None
    flagged = resolved(_build(package), PackageOptions(author="app team", license="BSD-3-Clause"))
    assert (flagged.author, flagged.license) == ("app team", "BSD-3-Clause")
    only_author = resolved(_build({"author": "me"}), PackageOptions())
    assert "license not set" in (unset_fields_notice(only_author) or "")


def test_an_embedder_description_names_its_vector_size():
    assert default_description("enc", None, 32) == "enc: maps a search query to a 32-value embedding vector."
    assert (
        default_description("x", ["a", "b"], 2)
        == "x: classifies a search query into one of 2 intents (a, b)."
    )


def test_a_build_saved_with_the_old_defaults_is_not_credited_to_edgecomp():
    old = {
        "author": "edgecomp",
        "license": "Apache-2.0",
        "description": "Classifies a search query into an intent.",
    }
    values = resolved(_build(old), PackageOptions())
    assert values.author is None and values.license is None
    assert values.description.startswith("shop-intents: classifies a search query into one of 4 intents")
    mine = resolved(_build({**old, "author": "edgecomp team"}), PackageOptions())  # changed: the user's words
    assert (mine.author, mine.license) == ("edgecomp team", "Apache-2.0")
