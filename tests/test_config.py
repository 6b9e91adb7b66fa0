"""Config loading and validation: pure Python, no JVM."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagspark.config import Config, load_config
from tagspark.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf" / "tagspark.toml"


def test_documented_config_file_equals_the_defaults():
    assert load_config(CONF) == Config()


def test_documented_config_file_names_every_key_and_no_other():
    """Equal values alone would not catch a key left out of the file (its default fills
    in): the file's keys and the config's keys must be the same sets."""
    import tomllib

    documented = tomllib.loads(CONF.read_text())
    in_file = {(section, key) for section, keys in documented.items() for key in keys}
    in_code = {(section, key) for section, keys in Config().to_dict().items() for key in keys}
    assert in_file == in_code


def test_spark_settings_add_up_from_the_file_and_every_set(tmp_path):
    """Each --set spark.conf.* adds a setting: earlier ones and the file's stay (they once
    replaced the whole table, so only the last --set took effect). Unquoted dotted keys in
    the file are Spark's dotted names, not nested tables."""
    path = tmp_path / "c.toml"
    path.write_text(
        '[spark.conf]\n"spark.executor.memory" = "2g"\nspark.sql.shuffle.partitions = 64\n'
        "spark.eventLog.enabled = true\n"
    )
    cfg = load_config(
        path,
        [
            "spark.conf.spark.ui.showConsoleProgress=false",
            "spark.conf.spark.eventLog.dir=file:///tmp/ev",
            "spark.conf.spark.sql.shuffle.partitions=16",
            # quoted as other --set strings are: the string itself, not its quotes
            'spark.conf.spark.app.id="my app"',
            "spark.conf.spark.local.dir='/tmp/a b'",
        ],
    )
    assert cfg.spark.conf == {
        "spark.executor.memory": "2g",
        "spark.sql.shuffle.partitions": "16",
        "spark.eventLog.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.eventLog.dir": "file:///tmp/ev",
        "spark.app.id": "my app",
        "spark.local.dir": "/tmp/a b",
    }


def test_overrides_are_typed_and_applied_after_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[kmeans]\nk = 7\n[input]\ntext_fields = ["body"]\n')
    cfg = load_config(
        path,
        [
            "kmeans.k=9",
            "kmeans.tol=0.5",
            "features.num_features=1024",
            "output.overwrite=true",
            "input.format=csv",
            "spark.conf.spark.executor.memory=2g",
        ],
    )
    assert (cfg.kmeans.k, cfg.kmeans.tol, cfg.features.num_features) == (9, 0.5, 1024)
    assert cfg.output.overwrite is True
    assert cfg.input.format == "csv"
    assert cfg.input.text_fields == ("body",)
    assert cfg.spark.conf == {"spark.executor.memory": "2g"}


def test_int_is_accepted_for_a_float_key():
    assert load_config(overrides=["kmeans.tol=0"]).kmeans.tol == 0.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("kmeans.kk=3", "unknown config key 'kmeans.kk' (did you mean 'kmeans.k'?)"),
        ("kmean.k=3", "unknown config section 'kmean' (did you mean 'kmeans'?)"),
        ("kmeans.k=1", "config key 'kmeans.k' must be at least 2, got 1"),
        ("kmeans.k=two", "config key 'kmeans.k' must be an integer, got 'two'"),
        ("kmeans.k=2.5", "config key 'kmeans.k' must be an integer, got 2.5"),
        (
            "features.num_features=1000",
            "config key 'features.num_features' must be a power of two (e.g. 262144 = 2^18), "
            "got 1000",
        ),
        (
            "input.format=xml",
            "config key 'input.format' must be one of auto, jsonl, csv, parquet, text, got 'xml'",
        ),
        (
            "kmeans.distance_measure=manhattan",
            "config key 'kmeans.distance_measure' must be one of euclidean, cosine, "
            "got 'manhattan'",
        ),
        (
            "kmeans.solver=gpu",
            "config key 'kmeans.solver' must be one of auto, row, block, got 'gpu'",
        ),
        ("output.overwrite=yes", "config key 'output.overwrite' must be true or false, got 'yes'"),
        (
            "input.text_fields=caption",
            "config key 'input.text_fields' must be a list of strings, got 'caption'",
        ),
        (
            "naming.tags_per_category=2",
            "config key 'naming.tags_per_category' must be at least naming.name_tags (3), got 2",
        ),
        ("kmeans", "--set expects section.key=value, got 'kmeans'"),
    ],
)
def test_bad_keys_and_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert str(err.value) == message


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[kmeans\nk=")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)


def test_to_dict_round_trips():
    cfg = load_config(overrides=["kmeans.k=4"])
    from tagspark.config import build_config

    assert build_config(cfg.to_dict()) == cfg


def test_local_driver_memory_is_half_the_machine_within_4g_and_32g():
    from tagspark.session import local_driver_memory

    gib = 2**30
    sizes = [local_driver_memory(n * gib) for n in (2, 8, 9, 24, 64, 200)]
    assert sizes == ["4g", "4g", "4g", "12g", "32g", "32g"]
