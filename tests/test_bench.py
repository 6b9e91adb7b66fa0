"""The suggestion benchmark's label ceiling (bench/suggest_quality.py), pure Python."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("scipy")

_spec = importlib.util.spec_from_file_location(
    "suggest_quality", Path(__file__).parents[1] / "bench" / "suggest_quality.py"
)
suggest_quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suggest_quality)


def test_the_test_posts_are_every_tenth_post_and_each_seed_shuffles_only_their_halves(tmp_path):
    lines = [{"tags": ["a", "b", "c", "d"]}, {"tags": []}, {"tags": ["e"]}]
    lines += [{"tags": ["f", "g"]}] * 7 + [{"tags": ["h"]}, {"tags": ["x", "y", "z"]}]
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    corpus = suggest_quality.read_corpus(path)
    # post 0 tests; post 1 has no tags; post 10 has one tag, too few to test, so it trains
    assert corpus.test == [["a", "b", "c", "d"]]
    assert corpus.train == [["e"]] + [["f", "g"]] * 7 + [["h"], ["x", "y", "z"]]
    one, two = suggest_quality.halves(corpus, 1), suggest_quality.halves(corpus, 2)
    assert one.train is corpus.train and two.train is corpus.train
    for given, hidden in one.test + two.test:
        assert len(given) == 2 and sorted(given + hidden) == ["a", "b", "c", "d"]
    assert one.test == suggest_quality.halves(corpus, 1).test  # seeded
    assert one.test != two.test


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


def test_several_shuffles_print_each_seed_and_the_mean_with_its_standard_error(capsys):
    assert suggest_quality.mean_and_error([0.4]) == (0.4, 0.0)
    mean, error = suggest_quality.mean_and_error([0.3, 0.4, 0.5])
    assert mean == pytest.approx(0.4)
    assert error == pytest.approx(0.1 / 3**0.5)

    def run(seed, cooc, ours):
        recall = {"co-occurrence": cooc, "tagspark": ours}
        return {"seed": seed, "results": {n: {"recall@10": r} for n, r in recall.items()}}

    suggest_quality.print_seeds([run(1, 0.40, 0.44), run(2, 0.50, 0.50)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["1", "0.4000", "0.4400", "1.100"]
    assert lines[2].split() == ["2", "0.5000", "0.5000", "1.000"]
    assert lines[3].split() == ["mean", "0.4500", "0.4700", "1.050"]  # the ratios' mean
    assert lines[4].split() == ["+-se", "0.0500", "0.0300", "0.050"]
