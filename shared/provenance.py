"""Where a result came from: the git commit of the checkout and whether it had local changes.

Every experiment's ``results.json`` and every bench run records ``code_version()``, so a figure
can be traced to the code that produced it and a stale one found (``python -m trainer report
--check``). Outside a git checkout (an installed wheel, a container without ``.git``) both
fields are None.
"""

from __future__ import annotations

import ast
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


def changed_since(
    commit: str, paths: list[str], cwd: Path = REPO, entries: dict[str, str] | None = None
) -> list[str] | None:
    """Files under ``paths`` whose code differs between ``commit`` and the working tree
    (committed or not); None when the commit is unknown to this checkout (a shallow clone, a
    rewritten history). A Python file whose change touches only comments, docstrings or layout
    (the same syntax tree without docstrings) does not count: it cannot move a figure; nor, in
    a file named in ``entries`` ({path: entry function}), a change to a top-level function the
    entry never reaches (``code_tree``)."""
    if git("cat-file", "-e", f"{commit}^{{commit}}", cwd=cwd) is None:
        return None
    out = git("diff", "--name-only", commit, "--", *paths, cwd=cwd)
    if out is None:
        return None
    entries = entries or {}
    return [p for p in out.splitlines() if p and not _same_code(commit, p, cwd, entries.get(p))]


def code_tree(source: str, entry: str | None = None) -> str | None:
    """The syntax tree of Python ``source`` without its docstrings, as text (comments and
    layout are not in the tree); None when it does not parse. With ``entry``, a top-level
    function of the module (an experiment's ``run``), the top-level functions that neither
    ``entry`` nor the module's other top-level statements reach by name, directly or through
    each other, are left out: in an experiment's module those turn the stored numbers into the
    report (``checks``, ``summary_rows``, ``notes``, recomputed at every report) and cannot
    move a stored figure."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if entry is not None:
        _keep_reached(tree, entry)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _keep_reached(tree: ast.Module, entry: str) -> None:
    """Drop from ``tree`` the top-level functions that ``entry`` and the module's statements
    outside functions never name (transitively); nothing when ``entry`` is not defined."""
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    if entry not in functions:
        return
    others = [node for node in tree.body if node not in functions.values()]
    todo = [entry, *(_names(others) & functions.keys())]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += sorted(_names([functions[name]]) & functions.keys())
    tree.body = [node for node in tree.body if getattr(node, "name", None) not in
                 functions.keys() - reached]  # fmt: skip


def _names(nodes: list[ast.AST]) -> set[str]:
    """Every bare name (``ast.Name``) used anywhere in ``nodes``."""
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


def _same_code(commit: str, path: str, cwd: Path, entry: str | None = None) -> bool:
    """Whether Python file ``path`` has the same code (``code_tree`` with ``entry``) at
    ``commit`` and in the working tree; False for other files, added or deleted ones."""
    if not path.endswith(".py"):
        return False
    before = git("show", f"{commit}:{path}", cwd=cwd)
    try:
        now = (cwd / path).read_text()
    except OSError:
        return False
    if before is None:
        return False
    old_tree = code_tree(before, entry)
    return old_tree is not None and old_tree == code_tree(now, entry)
