"""reports/README.md from the latest reports/*/results.json: our figure beside the paper's.

The met/missed column is recomputed here from the stored numbers by each experiment's
``checks`` (never copied from the JSON), so editing a target changes the report. A full
run is shown when there is one; otherwise the quick run, marked as such in its heading.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path

from shared.provenance import REPO, changed_since
from trainer.experiments.busy_cores import busy_cores
from trainer.experiments.carry_over import carried_commit, load_records
from trainer.experiments.code_reach import MODEL_CODE, code_of, reached_names
from trainer.experiments.common import Check
from trainer.experiments.registry import EXPERIMENTS, PROTOCOL
from trainer.experiments.seed_runs import (
    SPREAD_PLOT,
    check_spread,
    find_repeats,
    fmt_number,
    plot_margins,
    spread_lines,
    status_text,
    verdict_cell,
)

# trainer/data.py imports every dataset generator, so every experiment imports the ranging
# simulator; but only the experiments that train on its data (ranging-bluetooth, ranging-wifi)
# can move when it changes. These train on images only (Fashion-MNIST, MNIST, CIFAR-10), so
# trainer/ranging.py is not their code; an experiment not named here depends on it.
RANGING_CODE = "trainer/ranging.py"
IMAGE_ONLY = frozenset({
    "train-once-vs-grid", "snr-adaptivity", "quantizer-bits", "variable-length", "vl-vfe",
    "vl-vfe-threshold", "cnn", "digital", "multi-device", "image-jscc", "fading",
    "loss-weight-scan",
})  # fmt: skip


def find_results(reports_dir: str | Path) -> dict[str, dict[str, dict]]:
    """{experiment: {"full"|"quick": results}}: the latest results.json per name and mode."""
    found: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(reports_dir).glob("*/results.json")):
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"skipping {path}: {exc}")
            continue
        results["_dir"] = path.parent.name
        name, mode = results.get("experiment"), results.get("mode", "full")
        slot = found.setdefault(name, {})
        if mode not in slot or results.get("finished_at", "") > slot[mode].get("finished_at", ""):
            slot[mode] = results
    return found


def experiment_module(name: str) -> str:
    """Experiment ``name``'s own module, repository-relative (its ``run`` makes its figures)."""
    return str(Path(inspect.getfile(EXPERIMENTS[name])).resolve().relative_to(REPO))


def experiment_code(name: str, repo: Path = REPO) -> list[str]:
    """The paths whose change makes experiment ``name``'s figures stale: the code every
    experiment depends on, the experiment's module and the trainer modules it imports, as
    they are in the checkout ``repo`` (less the ranging simulator for IMAGE_ONLY ones). In the
    trainer modules only what ``run`` reaches counts (``changed_code``)."""
    own = Path(experiment_module(name))
    if not (repo / own).is_file():
        return [*MODEL_CODE, str(own)]
    paths = code_of(str(own), repo)
    return [p for p in paths if not (name in IMAGE_ONLY and p == RANGING_CODE)]


def changed_code(name: str, commit: str, repo: Path = REPO) -> list[str] | None:
    """The files of experiment ``name``'s code (``experiment_code``) changed since ``commit``
    in the checkout ``repo`` (None: the commit is not in it). In its own module and the trainer
    modules it imports a change counts only in the functions and constants its ``run`` reaches
    (``code_reach.reached_names``; with the protocol's constants, ``FULL_EPOCHS`` and the
    names, which the command line reads off the module) and in the rest of what runs outside
    functions: ``checks``, ``summary_rows``, ``notes`` and their helpers, wherever they live,
    are recomputed from the stored numbers at every report."""
    own = repo / experiment_module(name)
    constants = [entry for entry in PROTOCOL if entry.isupper()]
    reached = reached_names(own, "run", repo, roots=constants) if own.is_file() else {}
    kept = {path: names for path, names in reached.items() if path not in MODEL_CODE}
    return changed_since(commit, experiment_code(name, repo), cwd=repo, kept=kept)


def why_stale(name: str, results: dict, repo: Path = REPO, records: list[dict] = ()) -> str | None:
    """Why the run ``results`` of experiment ``name`` no longer matches the model or
    experiment code in the checkout ``repo`` (None when it does); measured from the commit
    the revalidation ``records`` (``revalidate.load_records``) carried its commit to."""
    code = results.get("code") or {}
    if not code.get("commit"):
        return "no commit recorded (ran before provenance was kept)"
    if code.get("dirty"):
        paths = experiment_code(name, repo)
        dirty = [p for p in code.get("dirty_paths", []) if _under(p, paths)]
        if dirty:
            return f"ran with uncommitted changes to {', '.join(dirty)}"
    start = carried_commit(code["commit"], records)
    changed = changed_code(name, start, repo)
    if changed is None:
        return f"commit {start[:12]} is not in this checkout"
    if changed:
        carried = start != code["commit"]
        since = start[:12] + (f" (carried from {code['commit'][:12]})" if carried else "")
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        return f"changed since {since}: {', '.join(changed[:5])}{more}"
    return None


def _shown_runs(reports_dir: str | Path) -> Iterator[tuple[str, str, dict]]:
    """(experiment, mode, run) for each shown run of a registered experiment, full and quick,
    and each of its seed repeats (``seed_runs.find_repeats``), the headline first."""
    for name, slots in find_results(reports_dir).items():
        if name not in EXPERIMENTS:
            continue
        for mode, results in slots.items():
            repeats, _ = find_repeats(results, Path(reports_dir) / results["_dir"])
            for run in (results, *repeats):
                yield name, mode, run


def stale_results(reports_dir: str | Path, repo: Path = REPO) -> list[tuple[str, str]]:
    """[(results folder, why)] for each shown run, and each of its seed repeats
    (``seed_runs``), whose model or experiment code changed since it ran (committed or not),
    or that cannot say which code it ran from; ``repo`` is the git checkout to compare with."""
    stale, records = [], {}
    for name, _, run in _shown_runs(reports_dir):
        if name not in records:
            records[name] = load_records(Path(reports_dir), name)
        why = why_stale(name, run, repo, records[name])
        if why is not None:
            stale.append((run["_dir"], why))
    return sorted(stale)


def busy_results(reports_dir: str | Path) -> list[tuple[str, str]]:
    """[(results folder, why)] for each shown full run, and each of its seed repeats, whose
    models were timed on busy cores (``busy_cores``): their accuracies stand, their timings do
    not. Quick runs are left out: smoke runs, never compared with a target."""
    busy = []
    for _, mode, run in _shown_runs(reports_dir):
        why = busy_cores(run) if mode == "full" else None
        if why is not None:
            busy.append((run["_dir"], why))
    return sorted(busy)


def current_repeats(
    name: str, results: dict, reports_dir: Path, records: list[dict], repo: Path = REPO
) -> tuple[list[dict], list]:
    """(the seed repeats of ``results`` with its settings and the code of the checkout
    ``repo``, measured from where the revalidation ``records`` carried them, [(folder, why
    left out)])."""
    repeats, left = find_repeats(results, reports_dir / results["_dir"])
    kept = []
    for repeat in repeats:
        why = why_stale(name, repeat, repo, records)
        if why is None:
            kept.append(repeat)
        else:
            left.append((repeat["_dir"], why))
    return kept, left


def _code_line(results: dict, records: list[dict] = ()) -> str:
    code = results.get("code") or {}
    if not code.get("commit"):
        return "Code: not recorded (run before provenance was kept)."
    carried = carried_commit(code["commit"], records)
    revalidated = "" if carried == code["commit"] else (
        f" Carried to `{carried[:12]}`: its quick run gave the same figures from both "
        "(`python -m trainer revalidate`, `revalidated.json`)."
    )  # fmt: skip
    state = "clean"
    if code.get("dirty"):
        paths = code.get("dirty_paths") or []
        code_paths = [p for p in paths if not _under(p, ["reports"])]
        if paths and not code_paths:  # other runs' figures being written beside it, no code
            state = "clean code; uncommitted files under reports/ only"
        elif code_paths:
            more = f" and {len(code_paths) - 3} more" if len(code_paths) > 3 else ""
            state = f"with uncommitted changes to {', '.join(code_paths[:3])}{more}"
        else:  # a run from before the paths were recorded
            state = "with uncommitted changes"
    return f"Code: commit `{code['commit'][:12]}` ({state}).{revalidated}"


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def check_rows(name: str, results: dict) -> list[Check]:
    return EXPERIMENTS[name].checks(results)


def heading(name: str) -> str:
    """A section's title, after an anchor named as the experiment, so that links such as
    ``reports/README.md#cnn`` land on it (a heading's own anchor spells out the whole title)."""
    return f'<a id="{name}"></a>\n\n## {name} ({EXPERIMENTS[name].PAPER})'


def experiment_section(
    name: str,
    results: dict,
    repeats: list[dict] = (),
    left: list[tuple[str, str]] = (),
    records: list[dict] = (),
) -> str:
    """The report's section for ``results``, with the spread over its seed ``repeats`` (and
    the repeats ``left`` out, with why) when there are any; ``records``: its revalidations."""
    module = EXPERIMENTS[name]
    mode = results.get("mode", "full")
    title = heading(name)
    if mode == "quick":
        title += " — QUICK run, not comparable to the targets"
    lines = [title, ""]
    settings = results.get("settings", {})
    lines.append(
        f"Mode **{mode}** from `reports/{results['_dir']}/results.json` "
        f"(finished {results.get('finished_at', '?')}, {results.get('total_wall_s', 0) / 60:.1f} "
        f"min): epochs {settings.get('epochs')}, "
        f"train subset {settings.get('train_subset') or 'all'}, "
        f"test examples {results.get('n_eval') or settings.get('n_eval') or 'all'}, "
        f"{results.get('draws') or settings.get('draws')} noise draws. "
        f"Command: `{results.get('command') or '?'}`. {_code_line(results, records)} "
        + (f"Design: {results['design']}." if results.get("design") else "")
    )
    lines += ["", "| figure | ours | target | paper | status |", "| --- | --- | --- | --- | --- |"]
    checks = check_rows(name, results)
    for c in checks:
        unit = f" {c.unit}" if c.unit else ""
        lines.append(
            f"| {c.figure} | {fmt_number(c.value)}{unit} | {c.op} {fmt_number(c.target)}{unit} "
            f"| {c.paper} "
            f"| {verdict_cell(c)} |"
        )
    rows = module.summary_rows(results)
    if rows:
        lines += ["", "| number | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in rows]
    lines.append("")
    if repeats:
        runs = [results, *repeats]
        lines += spread_lines(name, runs, [checks] + [check_rows(name, r) for r in repeats])
        lines += [f"![{name}: margins over seeds]({results['_dir']}/{SPREAD_PLOT})", ""]
    for where, why in left:
        lines += [f"Seed repeat `reports/{where}/` left out: {why}.", ""]
    timed = (results, *repeats) if mode == "full" else ()  # quick runs time nothing compared
    for run in timed:
        why = busy_cores(run)
        if why is not None:
            lines += [f"Run `reports/{run['_dir']}/` {why}.", ""]
    missed = [c for c in checks if not c.met]
    verdict = (
        "All targets met." if not missed
        else "Missed: " + "; ".join(f"{c.figure} ({status_text(c)})" for c in missed) + "."
    )  # fmt: skip
    lines.append(f"Where we differ: {verdict} {module.notes(results)}")
    machine = results.get("machine", {})
    lines.append(
        f"\nMachine: {machine.get('device', '?')}, {machine.get('cpu_cores', '?')} CPU cores, "
        f"{machine.get('platform', '?')}"
        + (f", {machine['gpu']}" if machine.get("gpu") else "")
        + (f", {machine['torch_threads']} torch thread(s)" if machine.get("torch_threads") else "")
    )
    for plot in results.get("plots", []):
        lines.append(f"\n![{name}: {plot}]({results['_dir']}/{plot})")
    return "\n".join(lines) + "\n"


def build_report(reports_dir: str | Path, repo: Path = REPO, plots: bool = False) -> str:
    """The report's text; with ``plots``, each run with seed repeats also gets its margins
    over seeds drawn (``seed_runs.SPREAD_PLOT`` in its folder)."""
    found = find_results(reports_dir)
    out = [
        "# Experiments: our numbers against the papers",
        "",
        "Generated by `python -m trainer report` from `reports/*/results.json`; do not edit. "
        "Full runs: `make experiments`; smoke runs: `make experiments-quick` (written to "
        "`reports/<name>-quick/`). Accuracies are fractions; gaps are in percentage points. "
        "Wall times come from a 2-core CPU machine shared with other jobs (one torch thread "
        "per experiment), so they carry some noise; ratios are taken within one run.",
        "",
        "| experiment | mode shown | targets met |",
        "| --- | --- | --- |",
    ]
    sections = []
    for name in EXPERIMENTS:
        slot = found.get(name, {})
        results = slot.get("full") or slot.get("quick")
        if results is None:
            out.append(f"| [{name}](#{name}) | not run | - |")
            sections.append(f"{heading(name)}\n\nNot run yet.\n")
            continue
        checks = check_rows(name, results)
        records = load_records(Path(reports_dir), name)
        repeats, left = current_repeats(name, results, Path(reports_dir), records, repo)
        met = f"{sum(c.met for c in checks)}/{len(checks)}"
        if repeats:
            spreads = check_spread([checks] + [check_rows(name, r) for r in repeats])
            if plots:
                seeds = [r["settings"]["seed"] for r in (results, *repeats)]
                plot_margins(spreads, seeds, Path(reports_dir) / results["_dir"] / SPREAD_PLOT)
            met += (
                f" (on the mean of {1 + len(repeats)} seeds: "
                f"{sum(s.on_mean.met for s in spreads)}/{len(spreads)})"
            )
        out.append(f"| [{name}](#{name}) | {results.get('mode', 'full')} | {met} |")
        sections.append(experiment_section(name, results, repeats, left, records))
    return "\n".join(out) + "\n\n" + "\n".join(sections)


def write_report(reports_dir: str | Path = "reports") -> Path:
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "README.md"
    path.write_text(build_report(reports_dir, plots=True))
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m trainer.experiments.report [REPORTS]``: name every shown full run (and seed
    repeat) under REPORTS (default ``reports``) timed on busy cores; exit 1 if any
    (``make report-check`` runs it after ``python -m trainer report --check``)."""
    import sys

    reports = (sys.argv[1:] if argv is None else argv) or ["reports"]
    busy = busy_results(reports[0])
    for where, why in busy:
        print(f"busy: {reports[0]}/{where}: {why}")
    print(f"{len(busy)} result folder(s) timed on busy cores")
    return 1 if busy else 0


if __name__ == "__main__":
    raise SystemExit(main())
