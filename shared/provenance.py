"""Where a result came from: the git commit of the checkout and whether it had local changes.

Every experiment's ``results.json`` and every bench run records ``code_version()``, so a figure
can be traced to the code that produced it and a stale one found (``python -m trainer report
--check``). Outside a git checkout (an installed wheel, a container without ``.git``) both
fields are None.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(*argv: str, cwd: Path = REPO) -> str | None:
    """stdout of ``git argv`` in the checkout, or None when git is missing or fails."""
    try:
        done = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # rstrip only: a porcelain status line starts with a space (" M path")
    return done.stdout.rstrip() if done.returncode == 0 else None


def code_version(cwd: Path = REPO) -> dict:
    """{"commit": HEAD's sha or None, "dirty": True if tracked files have uncommitted changes,
    "dirty_paths": those paths (at most 50)}."""
    commit = git("rev-parse", "HEAD", cwd=cwd)
    status = git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    paths = [] if not status else [line[3:] for line in status.splitlines()]
    return {
        "commit": commit,
        "dirty": None if status is None else bool(paths),
        "dirty_paths": paths[:50],
    }


def changed_since(commit: str, paths: list[str], cwd: Path = REPO) -> list[str] | None:
    """Files under ``paths`` that differ between ``commit`` and the working tree (committed or
    not); None when the commit is unknown to this checkout (a shallow clone, a rewritten
    history)."""
    if git("cat-file", "-e", f"{commit}^{{commit}}", cwd=cwd) is None:
        return None
    out = git("diff", "--name-only", commit, "--", *paths, cwd=cwd)
    return None if out is None else [line for line in out.splitlines() if line]
