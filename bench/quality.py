"""Compare the feature methods on labelled corpora: NMI, ARI, largest share, stability.

    python bench/quality.py                       # stackexchange_5sites (k=5) + planted (k=50)
    python bench/quality.py --planted-posts 50000 --methods spectral tfidf

For each corpus and each ``features.method`` it runs the tagspark job (one local Spark
session for all runs) with ``--label-field label`` and prints one table row. Stability is the
ARI between the assignments of two runs with different seeds (``--seeds``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tagspark.cli import main as tagspark  # noqa: E402
from tagspark.evaluate import scores as score_table  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "stackexchange_5sites.jsonl"


def run(corpus: Path, out: Path, k: int, method: str, seed: int) -> tuple[dict, float]:
    args = ["cluster", "--input", str(corpus), "--output", str(out), "--k", str(k), "-q"]
    args += ["--seed", str(seed), "--label-field", "label", "--overwrite"]
    start = time.perf_counter()
    if tagspark([*args, "--set", f'features.method="{method}"']) != 0:
        raise SystemExit(f"tagspark failed on {corpus} with {method}")
    return json.loads((out / "evaluation.json").read_text()), time.perf_counter() - start


def assignments(spark: SparkSession, out: Path) -> dict[str, int]:
    rows = spark.read.parquet(str(out / "assignments")).collect()
    return {r["id"]: r["category_id"] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["tfidf", "svd", "spectral"])
    parser.add_argument("--planted-posts", type=int, default=50_000)
    parser.add_argument("--planted-k", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs=2, default=[42, 7])
    args = parser.parse_args()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="tagspark-quality-"))
    corpora = []
    if SHARED.is_file():
        corpora.append(("stackexchange_5sites", SHARED, 5))
    if args.planted_posts:  # 0: the stackexchange corpus only
        planted = work / "planted.jsonl"
        generate = [sys.executable, str(ROOT / "bench" / "generate.py"), "--output", str(planted)]
        subprocess.run([*generate, "--posts", str(args.planted_posts)], check=True)
        corpora.append((f"planted {args.planted_posts:,}", planted, args.planted_k))
    header = "| corpus | k | method | NMI | ARI | largest | stability ARI | time |"
    print(header + "\n|---|---:|---|---:|---:|---:|---:|---:|", flush=True)
    for name, corpus, k in corpora:
        for method in args.methods:
            first, second = work / f"{method}-a", work / f"{method}-b"
            scores, seconds = run(corpus, first, k, method, args.seeds[0])
            run(corpus, second, k, method, args.seeds[1])
            a, b = assignments(spark, first), assignments(spark, second)
            pairs = Counter((a[i], str(b[i])) for i in a)
            stability = score_table([(x, y, n) for (x, y), n in pairs.items()])["ari"]
            print(
                f"| {name} | {k} | {method} | {scores['nmi']:.3f} | {scores['ari']:.3f} | "
                f"{scores['largest_share']:.1%} | {stability:.3f} | {seconds:.0f} s |",
                flush=True,
            )
    spark.stop()


if __name__ == "__main__":
    main()
