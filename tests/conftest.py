from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# tests on the real corpus run where ../shared/data sits beside the project (as on CI) and
# are skipped, saying so, where it does not (a clone elsewhere)
needs_stackexchange = pytest.mark.skipif(
    not (SHARED_DATA / "stackexchange_5sites.jsonl").is_file(),
    reason="../shared/data/stackexchange_5sites.jsonl is not beside the project",
)


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


# -- processes the tests start and always end ---------------------------------------------


def wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}): {log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"'{text}' not seen in {log} after {timeout} s")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, the process group ``proc`` leads (its JVMs included)."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # children left in the group go too
        os.killpg(proc.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_logged(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as fh:
        return subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
