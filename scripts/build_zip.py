"""Zip the pure-Python tagspark package for ``spark-submit --py-files``.

    python scripts/build_zip.py dist/tagspark.zip

Only ``tagspark/`` goes in (no caches); the entries are sorted and dated 1980-01-01 so the
same source gives the same bytes.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(target: Path) -> int:
    files = sorted(
        p
        for p in (ROOT / "tagspark").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(ROOT)), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return len(files)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/tagspark.zip")
    print(f"wrote {build(out)} files to {out}")
