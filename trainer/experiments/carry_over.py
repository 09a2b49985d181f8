"""The records that carry an experiment's runs from one commit to another
(``reports/<name>/revalidated.json``, written by ``python -m trainer revalidate``:
trainer/experiments/revalidate.py), read by the report and its staleness check."""

from __future__ import annotations

import json
from pathlib import Path

RECORD = "revalidated.json"


def load_records(reports_dir: Path, name: str) -> list[dict]:
    """The revalidations of experiment ``name`` (``reports_dir/name/revalidated.json``)."""
    path = Path(reports_dir) / name / RECORD
    if not path.is_file():
        return []
    return json.loads(path.read_text()).get("records", [])


def carried_commit(commit: str, records: list[dict]) -> str:
    """The commit a run of ``commit`` is measured from: ``commit``, or where the revalidation
    ``records`` carried it (following each record from → to)."""
    seen = {commit}
    while (step := next((r["to"] for r in records if r["from"] == commit), None)) is not None:
        if step in seen:
            break
        seen.add(step)
        commit = step
    return commit
