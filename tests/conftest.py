from __future__ import annotations

import json
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


TOY_POSTS = [
    {"id": "0", "tags": ["italy", "food"]},
    {"id": "1", "tags": ["food", "italy"]},
    {"id": "2", "tags": ["food"]},
    {"id": "3", "tags": ["italy", "architecture"]},
    {"id": "4", "tags": ["architecture", "italy"]},
    {"id": "5", "tags": ["architecture"]},
]

# what every finished output folder holds (without --k auto or --label-field)
OUTPUT_LAYOUT = [
    "_COMPLETE",
    "assignments",
    "categories.json",
    "categories.parquet",
    "model",
    "rejected",
    "report.html",
    "summary.md",
]
