"""Where a result came from: the git commit of the checkout and whether it had local changes.

Every experiment's ``results.json`` and every bench run records ``code_version()``, so a figure
can be traced to the code that produced it and a stale one found (``python -m trainer report
--check``). Outside a git checkout (an installed wheel, a container without ``.git``) both
fields are None.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
from collections.abc import Collection
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


def code_digest(paths: list[str], repo: Path = REPO) -> str:
    """SHA-256 (hex) of the files under ``paths`` (repository-relative files or folders) as
    they are on disk, committed or not: the same digest means the same code. Byte-compiled
    files and caches are left out; a missing path counts as absent, so adding it changes the
    digest."""
    digest = hashlib.sha256()
    for rel in sorted(paths):
        root = repo / rel
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            data = path.read_bytes()
            name = path.relative_to(repo).as_posix().encode()
            digest.update(b"%d:%s%d:" % (len(name), name, len(data)) + data)
    return digest.hexdigest()


def changed_since(
    commit: str, paths: list[str], cwd: Path = REPO, kept: dict[str, Collection[str]] | None = None
) -> list[str] | None:
    """Files under ``paths`` whose code differs between ``commit`` and the working tree
    (committed or not); None when the commit is unknown to this checkout (a shallow clone, a
    rewritten history). A Python file whose change touches only comments, docstrings or layout
    (the same syntax tree without docstrings) does not count: it cannot move a figure; nor, in
    a file named in ``kept`` ({path: names of top-level functions}), a change to a top-level
    function not named there (``code_tree``)."""
    if git("cat-file", "-e", f"{commit}^{{commit}}", cwd=cwd) is None:
        return None
    out = git("diff", "--name-only", commit, "--", *paths, cwd=cwd)
    if out is None:
        return None
    kept = kept or {}
    return [p for p in out.splitlines() if p and not _same_code(commit, p, cwd, kept.get(p))]


def code_tree(source: str, keep: Collection[str] | None = None) -> str | None:
    """The syntax tree of Python ``source`` without its docstrings, as text (comments and
    layout are not in the tree); None when it does not parse. With ``keep``, the top-level
    functions not named in it are left out (those an experiment's run never reaches,
    ``trainer.experiments.code_reach``: they turn the stored numbers into the report and
    cannot move a stored figure), and so are the top-level constants not named there
    (``constant_assignments``); everything else outside functions stays."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if keep is not None:
        unused = {id(node) for name, node in constant_assignments(tree).items() if name not in keep}
        tree.body = [
            node
            for node in tree.body
            if id(node) not in unused
            and not (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in keep
            )
        ]
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


def constant_assignments(tree: ast.Module) -> dict[str, ast.stmt]:
    """{name: statement} for the top-level statements of ``tree`` that bind one name to a value
    computed without calling anything: ``NAME = value`` or ``NAME: T = value`` whose value
    holds no call, ``await``, ``yield`` or ``:=``. Such a statement can matter only where its
    name is used. A name that another top-level statement binds too (assigned again, augmented,
    imported, a ``def``, ``class``, loop or ``with`` target, anywhere inside it) is left out,
    as is every statement that runs code: those always count."""
    binds: dict[str, int] = {}
    found: dict[str, ast.stmt] = {}
    for node in tree.body:
        for name in _bound_names(node):
            binds[name] = binds.get(name, 0) + 1
        name = _constant_name(node)
        if name is not None:
            found[name] = node
    return {name: node for name, node in found.items() if binds.get(name) == 1}


def _constant_name(node: ast.stmt) -> str | None:
    """The name a top-level ``NAME = value`` (or annotated) binds, when ``value`` calls
    nothing; else None."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        return None
    runs_code = (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)
    if not isinstance(target, ast.Name) or any(isinstance(n, runs_code) for n in ast.walk(value)):
        return None
    return target.id


def _bound_names(node: ast.stmt) -> list[str]:
    """Every name a top-level statement binds, anywhere inside it (a function's locals too:
    counting too many only leaves a constant out)."""
    names = []
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store | ast.Del):
            names.append(inner.id)
        elif isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(inner.name)
        elif isinstance(inner, ast.Import | ast.ImportFrom):
            names += [(a.asname or a.name).split(".")[0] for a in inner.names]
        elif isinstance(inner, ast.Global | ast.Nonlocal):
            names += inner.names
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            names.append(inner.name)
    return names


def _same_code(commit: str, path: str, cwd: Path, keep: Collection[str] | None = None) -> bool:
    """Whether Python file ``path`` has the same code (``code_tree`` with ``keep``) at
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
    old_tree = code_tree(before, keep)
    return old_tree is not None and old_tree == code_tree(now, keep)
