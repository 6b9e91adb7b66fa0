"""The ``tagspark`` command line: ``cluster`` and ``demo``.

This is the one error boundary: a :class:`~tagspark.errors.TagsparkError` becomes one line
``Error: ...`` on stderr and exit code 1; no traceback for user mistakes.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
import traceback
from importlib import resources
from pathlib import Path

from tagspark.config import FORMATS, Config, load_config
from tagspark.errors import OutputError, TagsparkError

log = logging.getLogger("tagspark")

DEMO_OUTPUT = "tagspark-demo"
DEMO_K = 5


def sample_corpus() -> Path:
    """The bundled sample corpus (``tagspark/data/sample_posts.jsonl.gz``)."""
    return Path(str(resources.files("tagspark") / "data" / "sample_posts.jsonl.gz"))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="a TOML config file (see conf/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key, e.g. --set features.num_features=65536 (repeatable)",
    )
    parser.add_argument(
        "--k",
        type=_k_value,
        help="number of categories (kmeans.k), or 'auto' to choose it in kmeans.k_range",
    )
    parser.add_argument("--seed", type=int, help="random seed (kmeans.seed)")
    parser.add_argument("--master", help="Spark master (default: spark.master, local[*])")
    parser.add_argument(
        "--overwrite", action="store_true", default=None, help="replace an existing output folder"
    )
    parser.add_argument(
        "--format", metavar="{" + ",".join(FORMATS) + "}", help="input format (input.format)"
    )
    parser.add_argument(
        "--label-field",
        metavar="NAME",
        help="score the categories against this field of the input (input.label_field)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="on a failure of the environment (memory, disk), also print the full trace",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagspark",
        description="Learn named hashtag categories from a post corpus with Spark.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cluster = sub.add_parser("cluster", help="cluster a post corpus into named categories")
    cluster.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="PATH",
        help="files, folders or globs (JSON Lines, CSV, Parquet, text)",
    )
    cluster.add_argument("--output", required=True, metavar="DIR", help="output folder")
    _common(cluster)
    choose = sub.add_parser(
        "choose-k", help="sweep k on a sample: cost and silhouette curve, table and plot"
    )
    choose.add_argument("--input", nargs="+", required=True, metavar="PATH", help="as for cluster")
    choose.add_argument("--output", required=True, metavar="DIR", help="folder for the curve")
    choose.add_argument("--k-range", metavar="LO:HI", help="k values to try (kmeans.k_range)")
    _common(choose)
    demo = sub.add_parser("demo", help="run the job on the bundled sample corpus")
    demo.add_argument(
        "--output",
        default=DEMO_OUTPUT,
        metavar="DIR",
        help=f"output folder (default: ./{DEMO_OUTPUT}, replaced on each run)",
    )
    _common(demo)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file, then ``--set`` overrides, then the dedicated flags."""
    overrides = list(args.overrides)
    if args.command == "demo":
        overrides.insert(0, f"kmeans.k={DEMO_K}")
    k = None if args.k == "auto" else args.k
    flags = {
        "kmeans.k": k,
        "kmeans.auto_k": True if args.k == "auto" else None,
        "kmeans.k_range": getattr(args, "k_range", None),
        "kmeans.seed": args.seed,
        "output.overwrite": args.overwrite,
        "input.format": args.format,
        "input.label_field": args.label_field,
    }
    overrides += [f"{key}={_toml(value)}" for key, value in flags.items() if value is not None]
    return load_config(args.config, overrides)


def _k_value(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number or 'auto', got {text!r}"
        ) from None


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _setup_logging(quiet: bool) -> None:
    """tagspark's own loggers at INFO (WARNING with -q); other Python libraries (py4j)
    at WARNING. Spark's JVM logging is set by ``spark.log_level``."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    log.setLevel(logging.WARNING if quiet else logging.INFO)


def _demo_output_ok(path: Path) -> bool:
    """The demo replaces its own earlier output, never a folder that is something else."""
    return not path.exists() or (path / "model" / "metadata.json").is_file()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tagspark`` and of ``jobs/cluster_tags.py``; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has printed
        return int(exc.code or 0)
    _setup_logging(args.quiet)
    _test_hooks()
    try:
        return _run(args)
    except TagsparkError as exc:
        if args.verbose and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    # Everything cheap is checked before Spark starts.
    from tagspark.read import resolve_inputs
    from tagspark.write import check_output, display

    cfg = config_from_args(args)
    if args.command == "demo":
        inputs = [str(sample_corpus())]
        if not _demo_output_ok(Path(args.output)):
            raise OutputError(
                f"'{args.output}' exists and is not a tagspark output; choose another --output"
            )
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, overwrite=True))
    else:
        inputs = args.input
    spec = resolve_inputs(inputs, cfg.input.format)
    out = check_output(args.output, cfg.output.overwrite, tuple(inputs))

    from pyspark.sql import SparkSession

    from tagspark.job import run
    from tagspark.read import resolve_remote_inputs
    from tagspark.session import build_session, choose_master
    from tagspark.storage import Storage

    owned = SparkSession.getActiveSession() is None  # leave a caller's session running
    spark = build_session(cfg.spark, choose_master(cfg.spark, args.master))
    try:
        spec = resolve_remote_inputs(Storage(spark), spec)
        if args.command == "choose-k":
            from tagspark.job import run_choose_k

            curve = run_choose_k(spark, cfg, spec, out)
        else:
            result = run(spark, cfg, spec, out)
    finally:
        if owned:
            _stop(spark)
    if args.command == "choose-k":
        print(_curve_report(curve, display(out)))
        return 0
    print(_report(result.categories, result.metadata, display(out)))
    return 0


def _test_hooks() -> None:
    """``TAGSPARK_PAUSE_BEFORE_PUBLISH=SECONDS``: wait that long, logging it, right before
    publishing (the killed-run test needs a run that is certain not to have published)."""
    pause = os.environ.get("TAGSPARK_PAUSE_BEFORE_PUBLISH")
    if not pause:
        return
    from tagspark import write

    def wait() -> None:
        log.warning("pausing %s s before publishing", pause)
        time.sleep(float(pause))

    write.BEFORE_PUBLISH.append(wait)


def _stop(spark) -> None:
    """Stop the session; a JVM that already died (out of memory) has nothing to stop, and
    its error must not hide the one that says why."""
    try:
        spark.stop()
    except Exception as exc:
        log.debug("stopping Spark failed: %s", exc)


def _curve_report(curve: dict, output: str) -> str:
    lines = [
        f"k-means on {curve['sample_posts']:,} sampled posts:",
        "       k        cost  silhouette",
    ]
    lines += [
        f"  {p['k']:>6}  {p['cost']:>10.2f}  {p['silhouette']:>10.4f}" for p in curve["curve"]
    ]
    lines += [f"Chosen k = {curve['chosen_k']} (highest silhouette)", f"Output: {output}"]
    return "\n".join(lines)


def _report(categories: list, metadata: dict, output: str, shown: int = 6) -> str:
    counts = metadata["counts"]
    width = max(len(c.name) for c in categories)
    lines = [
        f"{len(categories)} categories from {counts['kept']:,} posts "
        f"({counts['rejected']:,} records rejected, {counts['no_tags']:,} without tags):"
    ]
    for c in categories:
        tags = " ".join(f"#{t.tag}" for t in c.tags[:shown])
        lines.append(f"  {c.name:<{width}}  {c.size:>8,} posts  {tags}")
    scored = metadata["evaluation"]
    if scored is not None:
        from tagspark.evaluate import describe

        lines.append(
            f"Against '{metadata['config']['input']['label_field']}' ({scored['posts']:,} "
            f"labelled posts): {describe(scored)}"
        )
    lines.append(f"Output: {output}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
