"""Configuration: defaults, TOML files, ``--set section.key=value`` overrides, validation.

Pure Python (no Spark): everything here runs, and fails, before a JVM starts. The defaults
below are the documented ones in ``conf/tagspark.toml``; a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from tagspark.errors import ConfigError

FORMATS = ("auto", "jsonl", "csv", "parquet", "text")
INIT_MODES = ("k-means||", "random")
DISTANCE_MEASURES = ("euclidean", "cosine")
KMEANS_SOLVERS = ("auto", "row", "block")
FEATURE_METHODS = ("spectral", "svd", "tfidf")
MATRIX_PLACES = ("auto", "driver", "distributed")


@dataclass(frozen=True)
class InputConfig:
    format: str = "auto"
    tags_field: str = "tags"
    text_fields: tuple[str, ...] = ("caption", "text")
    id_field: str = "id"
    label_field: str = ""
    csv_delimiter: str = ","
    csv_multiline: bool = True


@dataclass(frozen=True)
class TagsConfig:
    max_tags_per_post: int = 30


@dataclass(frozen=True)
class FeaturesConfig:
    method: str = "spectral"
    dims: int = 0
    power_iterations: int = 50
    num_features: int = 1 << 18
    min_doc_freq: int = 2
    max_tags: int = 100_000
    matrix: str = "auto"


@dataclass(frozen=True)
class KMeansConfig:
    k: int = 20
    max_iter: int = 20
    tol: float = 1e-4
    seed: int = 42
    init_mode: str = "k-means||"
    init_steps: int = 2
    fit_sets: int = 50_000
    distance_measure: str = "euclidean"
    solver: str = "auto"
    auto_k: bool = False
    k_range: str = "2:60"
    k_points: int = 8
    sample_posts: int = 200_000


@dataclass(frozen=True)
class GenericConfig:
    detect: bool = True
    min_share: float = 0.0
    min_spread: float = 0.5
    tags: tuple[str, ...] = ()
    exclude_from_features: bool = False


@dataclass(frozen=True)
class NamingConfig:
    name_tags: int = 3
    tags_per_category: int = 20


@dataclass(frozen=True)
class PopularityConfig:
    file: str = ""
    network_posts: int = 40_000_000_000
    min_posts: int = 100_000
    max_posts: int = 10_000_000
    min_specificity: float = 0.5


@dataclass(frozen=True)
class SuggestConfig:
    neighbours: int = 50
    walk: float = 0.5
    max_tags: int = 100_000


@dataclass(frozen=True)
class OutputConfig:
    overwrite: bool = False
    assignment_rows_per_file: int = 1_000_000
    staging_lease_seconds: int = 120


@dataclass(frozen=True)
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "tagspark"
    log_level: str = "WARN"
    class_archive: bool = True
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    generic: GenericConfig = field(default_factory=GenericConfig)
    naming: NamingConfig = field(default_factory=NamingConfig)
    popularity: PopularityConfig = field(default_factory=PopularityConfig)
    suggest: SuggestConfig = field(default_factory=SuggestConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The config as plain TOML/JSON-able values (tuples become lists)."""
        return {
            section.name: {
                f.name: _plain(getattr(getattr(self, section.name), f.name))
                for f in dataclasses.fields(getattr(self, section.name))
            }
            for section in dataclasses.fields(self)
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Build a validated :class:`Config`.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file; keys it leaves out keep their defaults.
    overrides : list of str
        ``section.key=value`` strings applied after the file; ``value`` is read as a TOML
        value when it parses as one (``20``, ``1e-4``, ``true``, ``["a", "b"]``), else as a string.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        On an unreadable file, an unknown section or key, or a wrong type or value.

    Examples
    --------
    >>> load_config(overrides=["kmeans.k=5"]).kmeans.k
    5
    """
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        raw = _read_toml(Path(path))
    for item in overrides:
        section, key, value = _parse_override(item)
        table = raw.setdefault(section, {})
        if isinstance(value, dict) and isinstance(table.get(key), dict):
            # spark.conf: one more setting, the file's and earlier ones kept
            value = {**_flat(table[key]), **value}
        table[key] = value
    return build_config(raw)


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A TOML table's keys as dotted names: ``spark.sql.x = 1`` written unquoted in
    ``[spark.conf]`` is a nested table to TOML, and the setting ``spark.sql.x`` to Spark.

    >>> _flat({"spark": {"sql": {"x": 1}}, "spark.ui.y": "a"})
    {'spark.sql.x': 1, 'spark.ui.y': 'a'}
    """
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        flat.update(_flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return flat


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _parse_override(item: str) -> tuple[str, str, Any]:
    dotted, sep, text = item.partition("=")
    parts = dotted.strip().split(".", 1)
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    section, key = parts
    if section == "spark" and key.startswith("conf."):
        # spark.conf.<any spark key>=value: a Spark setting, always a string; quoted as
        # a TOML string (as every other --set string is) it is that string
        return "spark", "conf", {key[len("conf.") :]: _unquoted(text)}
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return section, key, value


def _unquoted(text: str) -> str:
    """``text``, or the string it spells when it is one TOML string (``"a"``, ``'a'``)."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if isinstance(value, str) else text


def build_config(raw: dict[str, Any]) -> Config:
    """Validate a nested ``{section: {key: value}}`` mapping into a :class:`Config`."""
    sections = {f.name: f.default_factory for f in dataclasses.fields(Config)}
    built: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in sections:
            raise ConfigError(f"unknown config section '{name}'{_suggest(name, sections)}")
        if not isinstance(value, dict):
            raise ConfigError(f"config section '{name}' must be a table of keys")
    for name, factory in sections.items():
        default = factory()
        values = dict(raw.get(name, {}))
        if name == "spark" and "conf" in values:
            values["conf"] = _spark_conf(values["conf"], default.conf)
        built[name] = _build_section(name, default, values)
    config = Config(**built)
    _check_values(config)
    return config


def _spark_conf(value: Any, default: dict[str, str]) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError("config key 'spark.conf' must be a table of Spark settings")
    merged = dict(default)
    merged.update({k: _spark_value(v) for k, v in _flat(value).items()})
    return merged


def _spark_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _build_section(name: str, default: Any, values: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(default)}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"unknown config key '{name}.{key}'{_suggest(key, fields, f'{name}.')}"
            )
        values[key] = _coerce(f"{name}.{key}", value, getattr(default, key))
    return dataclasses.replace(default, **values)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check ``value`` has the type of ``default``; ints are accepted where floats are."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"config key '{key}' must be {_type_name(default)}, got {value!r}")
    return value


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, tuple):
        return "a list of strings"
    return {int: "an integer", float: "a number", str: "a string"}.get(
        type(default), type(default).__name__
    )


def _suggest(name: str, choices: Any, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def parse_k_range(text: str) -> tuple[int, int]:
    """``"10:400"`` -> ``(10, 400)``; raises ConfigError unless ``2 <= LO <= HI``."""
    lo, sep, hi = text.partition(":")
    try:
        bounds = (int(lo), int(hi))
    except ValueError:
        bounds = (0, 0)
    if not sep or not 2 <= bounds[0] <= bounds[1]:
        raise ConfigError(f"a k range must be 'LO:HI' with 2 <= LO <= HI, got {text!r}")
    return bounds


def _k_range_ok(text: str) -> bool:
    try:
        parse_k_range(text)
    except ConfigError:
        return False
    return True


def _check_values(cfg: Config) -> None:
    checks: list[tuple[bool, str, str]] = [
        (cfg.input.format in FORMATS, "input.format", f"one of {', '.join(FORMATS)}"),
        (bool(cfg.input.tags_field), "input.tags_field", "a non-empty field name"),
        (bool(cfg.input.id_field), "input.id_field", "a non-empty field name"),
        (len(cfg.input.csv_delimiter) == 1, "input.csv_delimiter", "a single character"),
        (cfg.tags.max_tags_per_post >= 1, "tags.max_tags_per_post", "at least 1"),
        (
            cfg.features.num_features >= 2
            and cfg.features.num_features & (cfg.features.num_features - 1) == 0,
            "features.num_features",
            "a power of two (e.g. 262144 = 2^18)",
        ),
        (
            cfg.features.method in FEATURE_METHODS,
            "features.method",
            f"one of {', '.join(FEATURE_METHODS)}",
        ),
        (cfg.features.dims >= 0, "features.dims", "0 (chosen from k) or more"),
        (cfg.features.power_iterations >= 1, "features.power_iterations", "at least 1"),
        (cfg.features.min_doc_freq >= 0, "features.min_doc_freq", "0 or more"),
        (
            cfg.features.max_tags == 0 or cfg.features.max_tags >= 2,
            "features.max_tags",
            "0 (no cap) or at least 2",
        ),
        (
            cfg.features.matrix in MATRIX_PLACES,
            "features.matrix",
            f"one of {', '.join(MATRIX_PLACES)}",
        ),
        (cfg.kmeans.k >= 2, "kmeans.k", "at least 2"),
        (_k_range_ok(cfg.kmeans.k_range), "kmeans.k_range", "'LO:HI' with 2 <= LO <= HI"),
        (cfg.kmeans.k_points >= 2, "kmeans.k_points", "at least 2"),
        (cfg.kmeans.sample_posts >= 100, "kmeans.sample_posts", "at least 100"),
        (
            cfg.kmeans.fit_sets == 0 or cfg.kmeans.fit_sets >= 1000,
            "kmeans.fit_sets",
            "0 (all) or at least 1000",
        ),
        (cfg.kmeans.max_iter >= 1, "kmeans.max_iter", "at least 1"),
        (cfg.kmeans.tol >= 0, "kmeans.tol", "0 or more"),
        (
            cfg.kmeans.init_mode in INIT_MODES,
            "kmeans.init_mode",
            f"one of {', '.join(INIT_MODES)}",
        ),
        (cfg.kmeans.init_steps >= 1, "kmeans.init_steps", "at least 1"),
        (
            cfg.kmeans.distance_measure in DISTANCE_MEASURES,
            "kmeans.distance_measure",
            f"one of {', '.join(DISTANCE_MEASURES)}",
        ),
        (
            cfg.kmeans.solver in KMEANS_SOLVERS,
            "kmeans.solver",
            f"one of {', '.join(KMEANS_SOLVERS)}",
        ),
        (0 <= cfg.generic.min_share <= 1, "generic.min_share", "between 0 and 1"),
        (0 <= cfg.generic.min_spread <= 1, "generic.min_spread", "between 0 and 1"),
        (cfg.naming.name_tags >= 1, "naming.name_tags", "at least 1"),
        (
            cfg.naming.tags_per_category >= cfg.naming.name_tags,
            "naming.tags_per_category",
            f"at least naming.name_tags ({cfg.naming.name_tags})",
        ),
        (cfg.popularity.network_posts >= 1, "popularity.network_posts", "at least 1"),
        (cfg.popularity.min_posts >= 0, "popularity.min_posts", "0 or more"),
        (
            cfg.popularity.max_posts >= cfg.popularity.min_posts,
            "popularity.max_posts",
            f"at least popularity.min_posts ({cfg.popularity.min_posts})",
        ),
        (
            0 <= cfg.popularity.min_specificity <= 1,
            "popularity.min_specificity",
            "between 0 and 1",
        ),
        (
            1 <= cfg.suggest.neighbours <= 1000,
            "suggest.neighbours",
            "between 1 and 1000",
        ),
        (0 <= cfg.suggest.walk <= 1, "suggest.walk", "between 0 and 1"),
        (cfg.suggest.max_tags >= 0, "suggest.max_tags", "0 or more"),
        (
            cfg.output.assignment_rows_per_file >= 1000,
            "output.assignment_rows_per_file",
            "at least 1000",
        ),
        (
            cfg.output.staging_lease_seconds >= 4,
            "output.staging_lease_seconds",
            "at least 4",
        ),
        (bool(cfg.spark.app_name), "spark.app_name", "a non-empty name"),
    ]
    for ok, key, expected in checks:
        if not ok:
            section, name = key.split(".")
            value = getattr(getattr(cfg, section), name)
            raise ConfigError(f"config key '{key}' must be {expected}, got {value!r}")
