"""The ``tagspark`` command line: ``cluster``, ``choose-k``, ``demo``, ``assign``, ``suggest``
and ``search``.

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
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from tagspark.config import FORMATS, Config, load_config
from tagspark.errors import InputError, OutputError, ParameterError, TagsparkError
from tagspark.failures import Py4JConnectionErrors

log = logging.getLogger("tagspark")

DEMO_OUTPUT = "tagspark-demo"
DEMO_K = 5


def sample_corpus() -> Path:
    """The bundled sample corpus (``tagspark/data/sample_posts.jsonl.gz``)."""
    return Path(str(resources.files("tagspark") / "data" / "sample_posts.jsonl.gz"))


def _spark_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that runs a Spark job."""
    parser.add_argument("--config", metavar="FILE", help="a TOML config file (see conf/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key, e.g. --set features.num_features=65536 (repeatable)",
    )
    parser.add_argument("--master", help="Spark master (default: spark.master, local[*])")
    parser.add_argument(
        "--remote",
        metavar="sc://HOST:PORT",
        help="run on a Spark Connect server (default: $SPARK_REMOTE; none: --master)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", default=None, help="replace an existing output folder"
    )
    parser.add_argument(
        "--format", metavar="{" + ",".join(FORMATS) + "}", help="input format (input.format)"
    )
    _console_options(parser)


def _console_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="on a failure of the environment (memory, disk), also print the full trace",
    )


def _fit_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that fit categories."""
    _spark_options(parser)
    parser.add_argument(
        "--k",
        type=_k_value,
        help="number of categories (kmeans.k), or 'auto' to choose it in kmeans.k_range",
    )
    parser.add_argument("--seed", type=int, help="random seed (kmeans.seed)")
    parser.add_argument(
        "--label-field",
        metavar="NAME",
        help="score the categories against this field of the input (input.label_field)",
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
    cluster.add_argument(
        "--popularity",
        metavar="FILE",
        help="network post counts per tag, CSV or JSON Lines of tag,posts (popularity.file)",
    )
    _fit_options(cluster)
    choose = sub.add_parser(
        "choose-k", help="sweep k on a sample: cost and silhouette curve, table and plot"
    )
    choose.add_argument("--input", nargs="+", required=True, metavar="PATH", help="as for cluster")
    choose.add_argument("--output", required=True, metavar="DIR", help="folder for the curve")
    choose.add_argument("--k-range", metavar="LO:HI", help="k values to try (kmeans.k_range)")
    _fit_options(choose)
    demo = sub.add_parser("demo", help="run the job on the bundled sample corpus")
    demo.add_argument(
        "--output",
        default=DEMO_OUTPUT,
        metavar="DIR",
        help=f"output folder (default: ./{DEMO_OUTPUT}, replaced on each run)",
    )
    _fit_options(demo)
    assign = sub.add_parser("assign", help="place new posts with a saved model (no refit)")
    _model_option(assign)
    assign.add_argument("--input", nargs="+", required=True, metavar="PATH", help="as for cluster")
    assign.add_argument("--output", required=True, metavar="DIR", help="output folder")
    _spark_options(assign)
    suggest = sub.add_parser(
        "suggest", help="tags for a post (or, with --input, for every post of a corpus)"
    )
    _model_option(suggest)
    post = suggest.add_mutually_exclusive_group(required=True)
    post.add_argument("--tags", metavar="TEXT", help='the post\'s tags, e.g. "#espresso #grinder"')
    post.add_argument("--caption", metavar="TEXT", help="a caption whose hashtags are the tags")
    post.add_argument("--input", nargs="+", metavar="PATH", help="a corpus (a Spark job)")
    suggest.add_argument("--output", metavar="DIR", help="output folder (with --input)")
    suggest.add_argument("--n", type=_positive, default=15, help="how many tags (default 15)")
    suggest.add_argument("--json", action="store_true", help="print JSON instead of a table")
    suggest.add_argument(
        "--prefer-in-band",
        action="store_true",
        help="tags in the popularity band first (default: by fit to the post alone)",
    )
    suggest.add_argument(
        "--recommended-only",
        action="store_true",
        help="only recommended tags: in the band, specific to a category, not generic",
    )
    suggest.add_argument(
        "--popularity",
        metavar="FILE",
        help="network post counts per tag (CSV or JSON Lines of tag,posts) to rate tags by",
    )
    _spark_options(suggest)
    search = sub.add_parser("search", help="categories holding a tag, or tags with a prefix")
    _model_option(search)
    search.add_argument("query", metavar="QUERY", help="a tag or the start of one")
    search.add_argument("--limit", type=_positive, default=20, help="at most this many (20)")
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _console_options(search)
    report = sub.add_parser("report", help="rebuild report.html, the catalogue page, from a model")
    _model_option(report)
    report.add_argument(
        "--output",
        metavar="FILE",
        help="where to write the page (default: report.html beside the model/ folder)",
    )
    _console_options(report)
    return parser


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a saved model: the model/ folder of a cluster output, or the output itself",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file, then ``--set`` overrides, then the dedicated flags."""
    overrides = list(args.overrides)
    if args.command == "demo":
        overrides.insert(0, f"kmeans.k={DEMO_K}")
    k_arg = getattr(args, "k", None)
    flags = {
        "kmeans.k": None if k_arg == "auto" else k_arg,
        "kmeans.auto_k": True if k_arg == "auto" else None,
        "kmeans.k_range": getattr(args, "k_range", None),
        "kmeans.seed": getattr(args, "seed", None),
        "output.overwrite": getattr(args, "overwrite", None),
        "input.format": getattr(args, "format", None),
        "input.label_field": getattr(args, "label_field", None),
        "popularity.file": getattr(args, "popularity", None) if args.command == "cluster" else None,
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


def setup_logging(quiet: bool) -> None:
    """tagspark's own loggers at INFO (WARNING with -q); other Python libraries at WARNING,
    except py4j, whose tracebacks of a dead JVM stay off the console
    (:class:`~tagspark.failures.Py4JConnectionErrors`). Spark's JVM logging is set by
    ``spark.log_level``."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Py4JConnectionErrors) for f in handler.filters):
            handler.addFilter(Py4JConnectionErrors())
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
    setup_logging(args.quiet)
    _test_hooks()
    afterwards: list[Callable[[], None]] = []  # once the result or the error is told
    code = _told(args, afterwards)
    try:
        for step in afterwards:
            step()
    except KeyboardInterrupt:  # while the JVM saves its classes: the run is told already
        return 130
    return code


def _told(args: argparse.Namespace, afterwards: list[Callable[[], None]]) -> int:
    """Run the command and tell how it ended: its result, or one ``Error:`` line."""
    try:
        return _run(args, afterwards)
    except TagsparkError as exc:
        if args.verbose and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. head) stopped reading: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python's own advice)
        return 0


def _run(args: argparse.Namespace, afterwards: list[Callable[[], None]]) -> int:
    # Everything cheap is checked before Spark starts; suggest and search never start it.
    if args.command == "search" or (args.command == "suggest" and args.input is None):
        return _answer(args)
    if args.command == "report":
        return _rebuild_report(args)
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
    if args.command == "suggest" and not args.output:
        raise ParameterError("suggest --input writes its suggestions to --output DIR; give one")
    model_dir = _model_dir(args.model) if args.command in ("assign", "suggest") else None
    spec = resolve_inputs(inputs, cfg.input.format)
    out = check_output(args.output, cfg.output.overwrite, tuple(inputs))
    if cfg.popularity.file:  # read again after the fit: a bad file is told before Spark starts
        from tagspark.popularity import read_popularity

        read_popularity(cfg.popularity.file)

    from pyspark.sql import SparkSession

    from tagspark import job
    from tagspark.read import resolve_remote_inputs
    from tagspark.session import (
        build_session,
        choose_master,
        class_archive,
        connect_address,
        end_jvm,
    )
    from tagspark.storage import storage_for

    owned = SparkSession.getActiveSession() is None  # leave a caller's session running
    remote = args.remote or os.environ.get("SPARK_REMOTE")
    if remote and args.master:
        raise ParameterError("give --master or --remote (or SPARK_REMOTE), not both")
    if remote:
        connect_address(remote)  # a wrong address is told before anything starts
    master = None if remote else choose_master(cfg.spark, args.master)
    archive = class_archive(cfg.spark, master) if owned and not remote else None
    spark = build_session(cfg.spark, master, archive, remote)
    try:
        spec = resolve_remote_inputs(storage_for(spark), spec)
        if args.command == "choose-k":
            curve = job.run_choose_k(spark, cfg, spec, out)
        elif args.command == "assign":
            assigned = job.run_assign(spark, cfg, spec, model_dir, out)
        elif args.command == "suggest":
            suggested = job.run_suggest(
                spark, cfg, spec, model_dir, out, args.n, args.popularity,
                args.prefer_in_band, args.recommended_only,
            )  # fmt: skip
        else:
            result = job.run(spark, cfg, spec, out)
    finally:
        if owned:
            _stop(spark)
            # the JVM saves its classes after the result or the error is on the console
            afterwards.append(lambda: end_jvm(archive))
    if args.command == "choose-k":
        print(_curve_report(curve, display(out)))
    elif args.command == "assign":
        print(_assign_report(assigned, display(out)))
    elif args.command == "suggest":
        counts = suggested["counts"]
        print(f"Suggestions for {counts['kept']:,} posts ({counts['rejected']:,} rejected).")
        print(f"Output: {display(out)}")
    else:
        print(_report(result.categories, result.metadata, display(out)))
    return 0


def _model_dir(path: str) -> str:
    """The model folder ``path`` names (a model/ folder, or the cluster output holding
    one); a local one is checked here, a URI once Spark runs."""
    from tagspark.model import model_folder
    from tagspark.storage import is_uri

    if is_uri(path):
        return path
    folder = model_folder(path)
    if not (Path(folder) / "model.json").is_file():
        raise InputError(
            f"'{path}' holds no tagspark model (no model.json); give the model/ folder of a "
            "tagspark cluster output, the output folder itself, or a saved PipelineModel"
        )
    return folder


def _answer(args: argparse.Namespace) -> int:
    """``suggest`` for one post and ``search``: numpy and pyarrow, no Spark."""
    import json

    from tagspark import suggest
    from tagspark.model import TagModel
    from tagspark.storage import is_uri

    if is_uri(args.model):
        raise ParameterError(
            f"{args.command} reads a local model folder; copy '{args.model}' here first "
            "(e.g. hdfs dfs -get)"
        )
    folder = _model_dir(args.model)
    if args.command == "search":
        found = suggest.search(TagModel.load(folder), args.query, args.limit)
        print(
            json.dumps(found, indent=2, ensure_ascii=False)
            if args.json
            else _search_report(found, args.query)
        )
        return 0
    if args.output:
        raise ParameterError("--output goes with --input (suggestions for a whole corpus)")
    # only the rows of the post's tags and their candidates are read (TagModel.load_for)
    given = suggest.post_tags(None, args.tags, args.caption)
    model = TagModel.load_for(folder, given)
    if args.popularity:
        model = suggest.rated_with(model, args.popularity)
    tags = suggest.post_tags(model, args.tags, args.caption)
    result = suggest.suggest(model, tags, args.n, args.prefer_in_band, args.recommended_only)
    print(
        json.dumps(result, indent=2, ensure_ascii=False) if args.json else _suggest_report(result)
    )
    return 0


def _rebuild_report(args: argparse.Namespace) -> int:
    """``tagspark report``: the page from a saved model and its metadata.json, no Spark."""
    import json

    from tagspark.model import TagModel
    from tagspark.report import report_html

    folder = Path(_model_dir(args.model))
    metadata_file = folder / "metadata.json"
    metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
    model = TagModel.load(str(folder))
    page = report_html(model.categories, metadata, model)
    target = Path(args.output) if args.output else folder.parent / "report.html"
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the report to '{target}': {exc.strerror}") from None
    print(f"Report: {target}")
    return 0


def _count(n: int | None) -> str:
    """1234567 -> '1.2M'."""
    if n is None:
        return "-"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _suggest_report(result: dict) -> str:
    lines = ["Post: " + (" ".join(f"#{t}" for t in result["input_tags"]) or "(no tags)")]
    if result["unknown_tags"]:
        lines.append("Unknown to the model: " + " ".join(f"#{t}" for t in result["unknown_tags"]))
    if result["categories"]:
        places = ", ".join(
            f"{c['name']} ({c['size']:,} posts, distance {c['distance']:.2f})"
            for c in result["categories"]
        )
        lines.append(f"Categories: {places}")
    if result["message"]:
        lines.append(f"No suggestions: {result['message']}.")
        return "\n".join(lines)
    lines.append(f"Popularity: {result['popularity']}")
    if result.get("popularity_note"):
        lines.append(f"Note: {result['popularity_note']}.")
    rows = [
        (
            ("* " if s["recommended"] else "  ") + f"#{s['tag']}",
            f"{s['score']:.3f}",
            _goes_with(s),
            s["category"] or "-",
            _count(s["popularity"]),
            s["band"] or "-",
            "-" if s["specificity"] is None else f"{s['specificity']:.2f}",
        )
        for s in result["suggestions"]
    ]
    header = ("  tag", "score", "goes with (posts)", "category", "popularity", "band", "specific")
    lines += _table([header, *rows])
    lines.append(
        "score: how well the tag goes with the post's tags; "
        "* recommended: in the popularity band, specific to its category, not generic"
    )
    return "\n".join(lines)


def _goes_with(suggestion: dict, shown: int = 2) -> str:
    """``#coffee 120, #grinder 14`` (the post's tags it co-occurs with), or how else it was
    found."""
    pairs = suggestion["goes_with"]
    if not pairs:
        return "its category" if suggestion["source"] == "category" else "related tags"
    text = ", ".join(f"#{p['tag']} {p['posts']:,}" for p in pairs[:shown])
    return text + (f" +{len(pairs) - shown}" if len(pairs) > shown else "")


def _search_report(found: list[dict], query: str) -> str:
    if not found:
        return f"No category holds a tag starting with '{query}'."
    rows = [
        (c["name"], f"{c['size']:,}", f"#{c['tag']}", f"{c['weight']:.3f}", str(c["rank"] or "-"))
        for c in found
    ]
    return "\n".join(_table([("category", "posts", "tag", "weight", "rank"), *rows]))


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _assign_report(result: dict, output: str, shown: int = 10) -> str:
    counts = result["counts"]
    lines = [
        f"Placed {counts['kept']:,} posts ({counts['rejected']:,} records rejected, "
        f"{counts['no_tags']:,} without tags); {result['unknown_tags']['share']:.0%} of their "
        "tags are unknown to the model:"
    ]
    shown_rows = result["categories"][:shown]
    width = max((len(c["name"]) for c in shown_rows), default=0)
    lines += [f"  {c['name']:<{width}}  {c['posts']:>8,} posts" for c in shown_rows]
    if len(result["categories"]) > shown:
        lines.append(f"  ... {len(result['categories']) - shown} more in assign.json")
    lines.append(f"Output: {output}")
    return "\n".join(lines)


def _test_hooks() -> None:
    """``TAGSPARK_PAUSE_BEFORE_PUBLISH=SECONDS``: wait that long, logging it, right before
    publishing (the killed-run test needs a run that is certain not to have published), or
    until the file named by ``TAGSPARK_PAUSE_UNTIL`` exists (a test that reads the running
    JVM lets the run finish)."""
    pause = os.environ.get("TAGSPARK_PAUSE_BEFORE_PUBLISH")
    if not pause:
        return
    from tagspark import write

    resume = os.environ.get("TAGSPARK_PAUSE_UNTIL")

    def wait() -> None:
        log.warning("pausing %s s before publishing", pause)
        deadline = time.monotonic() + float(pause)
        while time.monotonic() < deadline and not (resume and os.path.exists(resume)):
            time.sleep(0.2)

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
