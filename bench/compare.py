"""Side-by-side benchmark: tagspark (default config), tagspark (plain config) and
scikit-learn's TfidfVectorizer + KMeans, on one labelled JSON Lines corpus, in one run.

    pip install -e '.[bench]'
    python bench/generate.py --posts 200000 --output bench/out/posts-200k.jsonl
    python bench/compare.py --input bench/out/posts-200k.jsonl --k 200

Each pipeline runs in its own process, from reading the corpus to writing each post's
cluster, and is timed as a whole: wall time (JVM start-up included) and the peak resident
memory of its process tree. Neither is told the labels. Afterwards, untimed, both are scored
the same way: each post's cluster is matched to its planted theme (``label``) by id, and
scikit-learn's NMI and ARI are computed. The ratios are to scikit-learn's wall time. With
``--repeat N`` every pipeline runs N times, alternating, and each one's median run is
reported (on this 2-core machine one pipeline's wall time varies by up to 10% run to run),
and each round's ratio beside (the two runs of a round are minutes apart, so a slow spell of
the machine moves both).
scikit-learn is a benchmark dependency only (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = ["--set", "features.method=tfidf", "--set", "features.num_features=262144"]


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (Linux /proc), in MB."""
    parents, rss = {}, {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        rss[int(entry)] = int(statm.split()[1]) * page
    tree, grew = {root}, True
    while grew:
        new = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= new
        grew = bool(new)
    return sum(rss.get(pid, 0) for pid in tree) / 2**20


def measure(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``: its wall time and the peak of its process tree's summed resident memory
    (the JVM that pyspark starts included), sampled every 0.2 s. Its stderr goes to ``log``
    (a pipe nobody reads would fill up with Spark's progress bar and stall the run)."""
    start = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _tree_rss_mb(proc.pid))
            time.sleep(0.2)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return {"seconds": seconds, "peak_mb": peak}


def run_sklearn(
    path: str, k: int, max_iter: int, seed: int, report: str, svd_dims: int = 0, sample: int = 0
) -> None:
    """scikit-learn's end-to-end pipeline: reads the tags, clusters, and writes each post's
    id and cluster (``report``.parquet) and its stage times (``report``). With
    ``svd_dims``, k-means runs on TruncatedSVD's ``svd_dims`` components of the TF-IDF
    matrix, L2-normalised (latent semantic analysis, scikit-learn's text-clustering
    example), instead of on the raw TF-IDF vectors. With ``sample``, only the first
    ``sample`` posts are read (for a file larger than scikit-learn can hold)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import Normalizer

    t0 = time.perf_counter()
    ids, docs = [], []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if sample and n == sample:
                break
            row = json.loads(line)
            ids.append(row["id"])
            docs.append(row["tags"])
    t1 = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer=lambda tags: tags, binary=True)
    x = vectorizer.fit_transform(docs)
    del docs
    t2 = time.perf_counter()
    stages = {"read": t1 - t0, "tfidf": t2 - t1}
    if svd_dims:
        x = TruncatedSVD(svd_dims, random_state=seed).fit_transform(x)
        x = Normalizer(copy=False).fit_transform(x)
        stages["svd"] = time.perf_counter() - t2
        t2 = time.perf_counter()
    km = KMeans(n_clusters=k, n_init=1, max_iter=max_iter, algorithm="lloyd", random_state=seed)
    pred = km.fit_predict(x)
    pq.write_table(pa.table({"id": ids, "category_id": pred}), f"{report}.parquet")
    stages["kmeans+write"] = time.perf_counter() - t2
    Path(report).write_text(
        json.dumps({"stages": stages, "vocabulary": len(vectorizer.vocabulary_)})
    )


def run_sklearn_measured(args: argparse.Namespace, tmp: str) -> dict:
    """scikit-learn in its own process: wall time, peak memory, scores and stage times."""
    report = f"{tmp}/sklearn.json"
    result = measure(
        [
            sys.executable,
            __file__,
            "--sklearn-only",
            "--input",
            args.input,
            "--k",
            str(args.k),
            "--max-iter",
            str(args.max_iter),
            "--seed",
            str(args.seed),
            "--svd-dims",
            str(args.svd_dims),
            "--sklearn-sample",
            str(args.sklearn_sample),
            "--report",
            report,
        ],
        Path(tmp, "sklearn.log"),
    )
    result.update(json.loads(Path(report).read_text()))
    result.update(score(args.input, f"{report}.parquet"))
    return result


def run_tagspark_measured(name: str, args: argparse.Namespace, tmp: str) -> dict:
    """tagspark's job in its own process: wall time, peak memory, scores and stage times."""
    extra = (
        PLAIN
        if name == "tagspark plain"
        else [arg for item in args.tagspark_set for arg in ("--set", item)]
    )
    out = f"{tmp}/{name.split()[1]}"
    if args.keep and name == "tagspark default":
        shutil.rmtree(args.keep, ignore_errors=True)
        out = args.keep
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "tagspark.cli",
        "cluster",
        "-q",
        "--input",
        args.input,
        "--output",
        out,
        "--k",
        str(args.k),
        "--seed",
        str(args.seed),
        "--set",
        f"kmeans.max_iter={args.max_iter}",
        *extra,
    ]
    result = measure(cmd, Path(f"{out}.log"))
    result.update(score(args.input, f"{out}/assignments"))
    metadata = json.loads(Path(out, "model", "metadata.json").read_text())
    result["stages"] = metadata["timings_seconds"]
    result["vocabulary"] = metadata["features"].get("vocabulary", 0)
    return result


def class_archive_state() -> str:
    """Whether tagspark's runs map the JVM class archive of an earlier run (as every local
    run after a machine's first does) or the first one writes it (its wall time then holds
    the one-off dump)."""
    from tagspark.config import SparkConfig
    from tagspark.session import class_archive

    archive = class_archive(SparkConfig(), "local[*]")
    if archive is None:
        return "off"
    if archive.partial is None:
        return f"mapped by every run ({archive.path})"
    return "none yet: the first tagspark run writes it, and its wall time includes that"


def run_pipeline(name: str, args: argparse.Namespace, tmp: str) -> dict:
    if name.startswith("tagspark"):
        return run_tagspark_measured(name, args, tmp)
    return run_sklearn_measured(args, tmp)


def _median_run(results: list[dict]) -> dict:
    """The run of median wall time (the lower middle one of an even count), with every
    run's wall time in ``runs`` and the highest peak memory of them."""
    ordered = sorted(results, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs"] = [r["seconds"] for r in results]
    chosen["peak_mb"] = max(r["peak_mb"] for r in results)
    return chosen


def score(corpus: str, assignments: str) -> dict:
    """NMI and ARI (scikit-learn's) of the ``id, category_id`` rows in the Parquet file or
    folder ``assignments`` against the ``label`` of each id in the JSON Lines ``corpus``."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    wanted = pa.schema([("id", pa.string()), ("label", pa.string())])
    labels = pj.read_json(
        corpus,
        parse_options=pj.ParseOptions(explicit_schema=wanted, unexpected_field_behavior="ignore"),
    )
    clusters = pq.read_table(assignments, columns=["id", "category_id"])
    joined = clusters.join(labels, "id").combine_chunks()
    truth = joined.column("label").dictionary_encode().combine_chunks().indices.to_numpy()
    found = joined.column("category_id").to_numpy()
    return {
        "posts": joined.num_rows,
        "nmi": normalized_mutual_info_score(truth, found),
        "ari": adjusted_rand_score(truth, found),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--no-plain",
        action="store_true",
        help="skip the plain config (HashingTF 2^18 on raw TF-IDF: hours at 1M posts)",
    )
    parser.add_argument(
        "--no-sklearn",
        action="store_true",
        help="skip scikit-learn (e.g. at 10M posts, beyond this machine's memory for it); "
        "no ratios are printed",
    )
    parser.add_argument(
        "--svd-dims",
        type=int,
        default=0,
        help="scikit-learn clusters TruncatedSVD's components of TF-IDF (LSA), this many, "
        "instead of raw TF-IDF (0); e.g. 100 for the long-tail table",
    )
    parser.add_argument(
        "--sklearn-sample",
        type=int,
        default=0,
        metavar="N",
        help="scikit-learn reads only the first N posts (0: all), e.g. when the file is "
        "larger than it can hold; it is scored on those",
    )
    parser.add_argument(
        "--tagspark-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a config override for the tagspark default run (repeatable)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="write the tagspark default run's output here (replaced) instead of a temporary "
        "folder, e.g. for bench/suggest.py",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every pipeline N times, alternating, and report each one's median run "
        "(every run's wall time is printed too)",
    )
    parser.add_argument("--sklearn-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sklearn_only:
        run_sklearn(
            args.input,
            args.k,
            args.max_iter,
            args.seed,
            args.report,
            args.svd_dims,
            args.sklearn_sample,
        )
        return
    pipelines = (
        []
        if args.no_sklearn
        else [f"sklearn svd{args.svd_dims}" if args.svd_dims else "scikit-learn"]
    )
    pipelines += ["tagspark default"] + ([] if args.no_plain else ["tagspark plain"])
    runs: dict[str, list[dict]] = {name: [] for name in pipelines}
    archive = class_archive_state()
    with tempfile.TemporaryDirectory(prefix="tagspark-bench-") as tmp:
        for _ in range(args.repeat):  # alternating, so a slow spell of the machine hits both
            for name in pipelines:
                runs[name].append(run_pipeline(name, args, tmp))
    rows = [(name, _median_run(results)) for name, results in runs.items()]
    base = rows[0][1]["seconds"] if not rows[0][0].startswith("tagspark") else float("nan")
    scored = {r["posts"] for _, r in rows}
    print(
        f"corpus {args.input}, k={args.k}, max_iter={args.max_iter}, "
        f"posts scored: {', '.join(f'{n:,}' for n in sorted(scored))}"
    )
    print(f"tagspark's JVM class archive: {archive}")
    # vocab: scikit-learn's every distinct tag; tagspark's tags in at least 2 posts
    print(
        f"{'pipeline':<18} {'posts':>10} {'wall s':>8} {'x sklearn':>9} {'peak MB':>8} "
        f"{'vocab':>9} {'NMI':>6} {'ARI':>6}  stages (s)"
    )
    for name, r in rows:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
        print(
            f"{name:<18} {r['posts']:>10,} {r['seconds']:>8.1f} {r['seconds'] / base:>9.2f} "
            f"{r['peak_mb']:>8.0f} {r.get('vocabulary', 0):>9,} {r['nmi']:>6.3f} "
            f"{r['ari']:>6.3f}  {stages}"
        )
    if args.repeat > 1:
        for name, r in rows:
            print(f"{name}: median of {', '.join(f'{t:.1f}' for t in r['runs'])} s")
        if not rows[0][0].startswith("tagspark"):  # each round's ratio, taken minutes apart
            for name, r in rows[1:]:
                paired = [t / b for t, b in zip(r["runs"], rows[0][1]["runs"], strict=True)]
                print(
                    f"{name} x sklearn, round by round: {', '.join(f'{x:.2f}' for x in paired)}"
                    f" (median {statistics.median(paired):.2f})"
                )


if __name__ == "__main__":
    main()
