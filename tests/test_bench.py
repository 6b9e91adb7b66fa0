"""The suggestion benchmark's label ceiling (bench/suggest_quality.py), pure Python."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("scipy")

_spec = importlib.util.spec_from_file_location(
    "suggest_quality", Path(__file__).parents[1] / "bench" / "suggest_quality.py"
)
suggest_quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suggest_quality)


def test_the_label_ceiling_offers_the_labels_tags_once_an_input_tag_is_not_generic():
    train = [
        ["coffee", "espresso", "love"],
        ["coffee", "grinder"],
        ["coffee", "espresso"],
        ["beer", "hops", "love"],
        ["beer", "ale"],
        ["beer", "hops"],
        ["beer", "love"],
    ]
    test = [
        (["espresso"], ["coffee"]),  # a theme tag: the label's tags, the input left out
        (["love"], ["grinder"]),  # generic only: the most popular tags
        (["hops", "love"], ["ale"]),
    ]
    data = suggest_quality.Split(train, test, list("cccbbbb"), list("ccb"))
    lists = suggest_quality.label_ceiling(data, {"love"})
    assert lists == [
        ["coffee", "grinder"],
        ["beer", "coffee", "espresso", "hops", "ale", "grinder"],
        ["beer", "ale"],
    ]
