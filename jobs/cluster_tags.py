"""spark-submit entry point of the tagspark clustering job.

    spark-submit --master local[2] --py-files dist/tagspark.zip jobs/cluster_tags.py \
        --input posts/ --output out/ --k 200 [--config conf/tagspark.toml] [--set a.b=c]

It takes the same flags and config as ``tagspark cluster``: everything is validated before
Spark starts, then the session is built and the stages run (see ``tagspark.cli``).
"""

from __future__ import annotations

import sys

from tagspark.cli import main

if __name__ == "__main__":
    sys.exit(main(["cluster", *sys.argv[1:]]))
