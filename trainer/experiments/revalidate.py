"""Carry an experiment's runs over a model-code change that moves none of its figures.

A run goes stale (``report.why_stale``) when any file of its code changes after it ran, and a
stale seed repeat drops out of the report's mean ± sd. A change to the model code under
``shared/`` often leaves an experiment's models exactly as they were (a fix to the
variable-length path moves nothing in an experiment that never builds a variable-length model),
and re-running that experiment's full version and its seed repeats (up to hours) only to show
so is waste. ``python -m trainer revalidate NAME`` asks the experiment's quick version instead:

1. the runs of NAME (its full run and its seed repeats) ran from commits C0 (each run's
   ``code.commit``, or the commit an earlier revalidation carried it to); the checkout must be
   clean;
2. every file of NAME's code that changed since C0 must lie under ``shared/`` (``QUALIFYING``):
   the experiment's own modules and the trainer hold what a quick run leaves out (the full
   plan, epoch-dependent schedules), so a change there is never carried over;
3. the quick version runs from each C0 (a temporary git worktree) and from the checkout, and
   each C0's ``results.json`` is compared with the checkout's value by value, less what differs
   between two runs of the same code (``comparable``: wall and CPU times and their ratios, the
   machine, the commit, when it finished);
4. all identical: a record {from C0, to HEAD, the changed paths, how many values were compared}
   per C0 is added to ``reports/NAME/revalidated.json``; from then on every run of NAME that
   ran from a C0 is measured from HEAD. The checkout's quick run is kept as
   ``reports/NAME-quick``. Any difference: nothing is recorded, the differences are printed,
   and NAME must be re-run.

What it cannot see: a change whose effect only a model the full run builds and the quick run
does not would show (another configuration of the same code). The record names the changed
paths, so a reader can judge.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from pathlib import Path

from shared.nn.model import ModelConfig
from shared.provenance import REPO, code_version, git
from trainer.experiments.carry_over import RECORD, carried_commit, load_records
from trainer.experiments.report import changed_code, experiment_code
from trainer.experiments.seed_runs import find_repeats

QUALIFYING = ("shared/",)
# keys whose values differ between two runs of the same code on one machine: times (and ratios
# of times), the machine, provenance, and what is computed from them
VOLATILE = re.compile(
    r"wall|cpu_s|cpu_ratio|_us_per_|elapsed|^finished_at$|^code$|^machine$|^checks$|^command$"
)


def comparable(results: dict, prefix: str = "") -> dict[str, object]:
    """A results.json flattened to {path: value}, less the ``VOLATILE`` keys."""
    flat: dict[str, object] = {}
    if isinstance(results, dict):
        for key, value in results.items():
            if not VOLATILE.search(str(key)):
                flat.update(comparable(value, f"{prefix}/{key}"))
    elif isinstance(results, list):
        for k, value in enumerate(results):
            flat.update(comparable(value, f"{prefix}[{k}]"))
    else:
        flat[prefix] = results
    return flat


def config_defaults() -> dict[str, dict[str, object]]:
    """{"model": {field: default}, "run": {field: default}} of the model config
    (shared.nn.model.ModelConfig) and the training config (trainer.train.TrainConfig), for the
    fields with a plain default (the two share names such as ``task``, with other defaults)."""
    from trainer.train import TrainConfig

    return {
        name: {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        for name, cls in (("model", ModelConfig), ("run", TrainConfig))
    }


def new_setting_at_default(key: str, value, defaults: dict[str, dict[str, object]]) -> bool:
    """Whether ``key`` (a ``comparable`` path) is a recorded config field (under ``/config/``;
    ``/config/model/`` for the model config's) added to the configs since the older run, at its
    default: the older run used that value without recording it (e.g.
    ``.../config/model/beta_gate_scale: 1.0``)."""
    if "/config/" not in key:
        return False
    prefix, name = key.rsplit("/", 1)
    own = defaults["model" if prefix.endswith("/config/model") else "run"]
    return name in own and own[name] == value


def differences(before: dict, after: dict) -> list[str]:
    """Where two results differ (``comparable`` of each; NaN equals NaN), as text lines. A
    config field only the newer run records, at its default (:func:`new_setting_at_default`),
    is no difference."""
    a, b = comparable(before), comparable(after)
    defaults = config_defaults()
    out = [f"{k}: only before" for k in sorted(a.keys() - b.keys())]
    out += [f"{k}: only after" for k in sorted(b.keys() - a.keys())
            if not new_setting_at_default(k, b[k], defaults)]  # fmt: skip
    for key in sorted(a.keys() & b.keys()):
        x, y = a[key], b[key]
        both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
        if x != y and not both_nan:
            out.append(f"{key}: {x!r} -> {y!r}")
    return out


def quick_run(
    name: str, checkout: Path, out: Path, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    """``python -m trainer experiment NAME --quick`` from ``checkout`` (one torch thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-m", "trainer", "experiment", name, "--quick", "--out", str(out)]
    return subprocess.Popen([*cmd, *extra], cwd=checkout, env=env, stdout=subprocess.DEVNULL)


def run_commits(reports_dir: Path, name: str) -> list[str]:
    """The commits the runs of ``name`` came from: its full run's and those of the seed
    repeats the report counts beside it (``seed_runs.find_repeats``), each once, the full
    run's first."""
    folder = Path(reports_dir) / name
    main = json.loads((folder / "results.json").read_text())
    repeats, _ = find_repeats(main, folder)
    commits = [(run.get("code") or {}).get("commit") for run in (main, *repeats)]
    return list(dict.fromkeys(c for c in commits if c))


def _refused(*detail: str) -> dict:
    return {"status": "refused", "detail": list(detail), "records": []}


def revalidate(
    name: str, reports_dir: Path, repo: Path = REPO, extra: tuple[str, ...] = ()
) -> dict:
    """Steps 1-4 of the module docstring for experiment ``name``, once for each commit its
    runs (full run and seed repeats) are measured from; ``extra``: more arguments to every
    quick run (a smaller one). Returns {"status": "current" | "recorded" | "differs" |
    "refused", "detail": [...], "records": the records added}."""
    if not (Path(reports_dir) / name / "results.json").is_file():
        return _refused(f"no full run at {Path(reports_dir) / name / 'results.json'}")
    records = load_records(reports_dir, name)
    starts = list(dict.fromkeys(carried_commit(c, records) for c in run_commits(reports_dir, name)))
    if not starts:
        return _refused("the runs recorded no commit")
    code = experiment_code(name, repo)
    version = code_version(repo)
    dirty = [p for p in version["dirty_paths"] if any(p.startswith(c) for c in code)]
    if dirty:
        return _refused(*(f"uncommitted: {p}" for p in dirty))
    changes = {}
    for start in starts:
        changed = changed_code(name, start, repo)
        if changed is None:
            return _refused(f"{start[:12]} is not in this checkout")
        outside = [p for p in changed if not p.startswith(QUALIFYING)]
        if outside:
            return _refused(*(f"not model code: {p}" for p in outside))
        if changed:
            changes[start] = changed
    if not changes:
        return {"status": "current", "detail": [], "records": []}
    quick_out = Path(reports_dir).resolve() / f"{name}-quick"
    with tempfile.TemporaryDirectory(prefix="revalidate-") as tmp:
        befores, codes = {}, []
        for k, start in enumerate(changes):
            old, out = Path(tmp) / f"old-{k}", Path(tmp) / f"out-{k}"
            if git("worktree", "add", "--detach", str(old), start, cwd=repo) is None:
                return _refused(f"git worktree add {start[:12]} failed")
            try:  # the checkout's quick run beside the first old one
                runs = [quick_run(name, old, out, extra)]
                if k == 0:
                    runs.append(quick_run(name, repo, quick_out, extra))
                codes += [run.wait() for run in runs]
            finally:
                git("worktree", "remove", "--force", str(old), cwd=repo)
            if any(codes):
                return _refused(f"quick runs exited {codes}")
            befores[start] = json.loads((out / "results.json").read_text())
    after = json.loads((quick_out / "results.json").read_text())
    for start, before in befores.items():
        diff = differences(before, after)
        if diff:
            return {"status": "differs", "detail": [f"from {start[:12]}:", *diff], "records": []}
    added = [
        {
            "from": start,
            "to": version["commit"],
            "changed": changed,
            "values_compared": len(comparable(after)),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for start, changed in changes.items()
    ]
    path = Path(reports_dir) / name / RECORD
    path.write_text(json.dumps({"experiment": name, "records": [*records, *added]}, indent=1))
    return {"status": "recorded", "detail": [], "records": added}


def cmd_revalidate(args) -> int:
    failed = False
    for name in args.names:
        result = revalidate(name, Path(args.reports))
        print(f"{name}: {result['status']}")
        for line in result["detail"][:20]:
            print(f"  {line}")
        for rec in result["records"]:
            print(f"  {rec['from'][:12]} -> {rec['to'][:12]}: {rec['values_compared']} values "
                  f"identical; changed: {', '.join(rec['changed'])}")  # fmt: skip
        failed |= result["status"] in ("differs", "refused")
    return 1 if failed else 0


def add_parser(sub) -> None:
    from trainer.experiments.registry import EXPERIMENTS
    from trainer.subcommands import add_subcommand

    p = add_subcommand(
        sub, "revalidate",
        "carry experiments' runs over a model-code change their quick runs show moves nothing",
        cmd_revalidate,
    )  # fmt: skip
    p.add_argument("names", nargs="+", choices=tuple(EXPERIMENTS), metavar="NAME")
    p.add_argument("--reports", default="reports")
