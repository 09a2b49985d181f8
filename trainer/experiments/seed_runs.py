"""Repeats of an experiment under other seeds, and the spread of its figures over them.

A repeat is the same experiment run again, from the same code, with another seed::

    python -m trainer experiment vl-vfe --workers 2 --seed 1 --out reports/vl-vfe/seed-1

It lives in ``seed-<k>/`` inside the folder of the run it repeats, so ``report.find_results``
(which reads ``reports/*/results.json``, one level deep) never takes it for the headline run.
The report recomputes every check on each run (the headline's and its repeats') and shows the
mean ± sample standard deviation over them, whether the mean meets the target ("on the mean"),
and in how many seeds it is met. A repeat is left out, with the reason, when its experiment,
mode or settings (other than the seed and how the work was spread) differ from the headline's,
when its seed repeats one already counted, or when its code is out of date (``report`` checks
that as it does for the headline).

Seeds change everything a run draws: weight initialisation, minibatch order, the noise in
training and in the pilots' estimates; the test images stay the same.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from trainer.experiments.common import Check

REPEAT_GLOB = "seed-*/results.json"
# settings that say how a run was carried out, not what it computed
_HOW = ("seed", "workers", "progress")
# per experiment, the stored numbers whose spread the report shows beside the checks' ("*"
# matches every key of a dict or item of a list; a list item with a "psnr_db" is named by it)
SPREAD_FIELDS: dict[str, tuple[str, ...]] = {
    "snr-adaptivity": ("hyper_minus_matched/*",),
    "quantizer-bits": ("bits/*/accuracy",),
    "variable-length": ("models/*/table/*/*/n_active", "models/*/table/*/*/accuracy"),
    "vl-vfe": (
        "table_iii/*/proposed/accuracy", "table_iii/*/deepjscc/accuracy",
        "table_iii/*/quantization/accuracy", "table_iii/*/proposed/n_active",
        "dynamic/*/*/accuracy", "dynamic/*/*/latency_ms",
    ),
    "vl-vfe-threshold": ("choice/gamma0", "dynamic/*/*/n_active", "dynamic/*/*/accuracy"),
    "loss-weight-scan": ("scores/*/*/shortfall_points", "scores/*/*/best_gap_points"),
    "ranging-knee-scan": ("profiles/*/scores/*/*/worst",),
}  # fmt: skip


def mean_sd(values) -> tuple[float, float]:
    """(mean, sample standard deviation with n − 1) of ``values``; the sd is NaN for one value,
    and both are NaN when a value is (a run whose figure could not be computed)."""
    values = list(values)
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def status_text(check: Check, unmeasured: str = "not measured in this run") -> str:
    """The check's status: met, "missed by …", or, when the check has no value (NaN: the run
    could not compute the figure, e.g. a rate gap where the two curves share no rate),
    "missed: ``unmeasured``" rather than "missed by nan"."""
    if check.met:
        return "met"
    if math.isnan(check.value):
        return f"missed: {unmeasured}"
    return check.status()


def verdict_cell(check: Check, unmeasured: str = "not measured in this run") -> str:
    """:func:`status_text` for a table cell: a miss in bold."""
    text = status_text(check, unmeasured)
    return text if check.met else f"**{text}**"


@dataclass(frozen=True)
class Spread:
    """One check's value in every run (the headline's first), against the check's target."""

    figure: str
    values: tuple[float, ...]
    op: str
    target: float
    unit: str = ""

    @property
    def mean(self) -> float:
        return mean_sd(self.values)[0]

    @property
    def sd(self) -> float:
        """Sample standard deviation (n − 1); NaN for a single run."""
        return mean_sd(self.values)[1]

    @property
    def on_mean(self) -> Check:
        return Check(self.figure, self.mean, self.op, self.target, self.unit)

    @property
    def margins(self) -> tuple[float, ...]:
        """How far each value is on the right side of the target (negative: missed by)."""
        sign = 1.0 if self.op == ">=" else -1.0
        return tuple(sign * (v - self.target) for v in self.values)

    @property
    def met_count(self) -> int:
        return sum(Check(self.figure, v, self.op, self.target).met for v in self.values)


def find_repeats(main: dict, results_dir: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """(repeats usable beside ``main``, [(folder, why left out)]) from ``results_dir``'s
    ``seed-*/results.json``, in seed order; each kept one gets ``_dir`` = "<folder>/seed-<k>"."""
    kept, left = [], []
    seeds = {main.get("settings", {}).get("seed")}
    for path in sorted(Path(results_dir).glob(REPEAT_GLOB)):
        where = f"{Path(results_dir).name}/{path.parent.name}"
        try:
            repeat = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            left.append((where, f"unreadable: {exc}"))
            continue
        seed = repeat.get("settings", {}).get("seed")
        why = mismatch(main, repeat)
        if why is None and seed is None:
            why = "no seed recorded"
        elif why is None and seed in seeds:
            why = f"seed {seed} already counted"
        if why is not None:
            left.append((where, why))
            continue
        seeds.add(seed)
        kept.append({**repeat, "_dir": where})
    kept.sort(key=lambda r: r["settings"]["seed"])
    return kept, left


def mismatch(main: dict, repeat: dict) -> str | None:
    """Why ``repeat`` is not the headline run under another seed (None when it is)."""
    for key in ("experiment", "mode"):
        if repeat.get(key) != main.get(key):
            return f"{key} {repeat.get(key)!r}, not {main.get(key)!r}"
    ours = {k: v for k, v in main.get("settings", {}).items() if k not in _HOW}
    theirs = {k: v for k, v in repeat.get("settings", {}).items() if k not in _HOW}
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if differ:
        return "other settings: " + ", ".join(
            f"{k} {theirs.get(k)!r} (headline {ours.get(k)!r})" for k in differ
        )
    return None


def check_spread(check_lists: list[list[Check]]) -> list[Spread]:
    """Each check of the first run that every run has (matched by its figure), with its value
    in every run, in the first run's order."""
    by_figure = [{c.figure: c for c in checks} for checks in check_lists]
    spreads = []
    for first in check_lists[0]:
        if all(first.figure in run for run in by_figure):
            values = tuple(run[first.figure].value for run in by_figure)
            spreads.append(Spread(first.figure, values, first.op, first.target, first.unit))
    return spreads


def field_spread(runs: list[dict], pattern: str) -> list[tuple[str, tuple[float, ...]]]:
    """[(name, value in every run)] for the numbers at ``pattern`` ("a/*/b": "*" matches every
    key or list item) in the first run that every run has and that are numbers in all."""
    found = []
    for name, path in _expand(runs[0], pattern.split("/")):
        values = [_at(run, path) for run in runs]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            found.append((name, tuple(float(v) for v in values)))
    return found


def _expand(node, parts: list[str], name: str = "", path: tuple = ()):
    if not parts:
        yield name.strip("/"), path
        return
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            yield from _expand(node[key], rest, f"{name}/{key}", (*path, key))
    elif isinstance(node, list) and head == "*":
        for index, item in enumerate(node):
            named = isinstance(item, dict) and "psnr_db" in item
            label = f"{item['psnr_db']:g} dB" if named else index
            yield from _expand(item, rest, f"{name}/{label}", (*path, index))


def _at(node, path: tuple):
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


SPREAD_PLOT = "seed_spread.png"


def plot_margins(spreads: list[Spread], seeds: list[int], path: Path) -> Path:
    """Each check's margin to its target (value − target, sign turned so that ≥ 0 is met) per
    seed as dots, with the mean ± sd over seeds, one row per check, in the check's own unit."""
    from trainer.experiments.common import finish_axes, new_axes

    plt, fig, ax = new_axes()
    fig.set_size_inches(10, 1.5 + 0.4 * len(spreads))
    rows = range(len(spreads))[::-1]
    for row, spread in zip(rows, spreads, strict=True):
        margins = spread.margins
        for k, (seed, margin) in enumerate(zip(seeds, margins, strict=True)):
            ax.plot(
                margin,
                row,
                "o",
                ms=4,
                color=f"C{k}",
                label=f"seed {seed}" if row == rows[0] else None,
            )
        mean, sd = mean_sd(margins)
        sd = 0.0 if math.isnan(sd) else sd  # one seed (or a NaN seed): no bar
        ax.errorbar(mean, row, xerr=sd, fmt="D", color="k", ms=5, capsize=3,
                    label="mean ± sd" if row == rows[0] else None)  # fmt: skip
    ax.axvline(0.0, color="grey", lw=1)
    ax.set_yticks(list(rows))
    ax.set_yticklabels([f"{s.figure[:80]} ({s.unit or 'ratio'})" for s in spreads], fontsize=7)
    if max(abs(m) for s in spreads for m in s.margins) > 10:  # a wide range: linear near 0
        ax.set_xscale("symlog", linthresh=1.0)
    xlabel = "margin to the target (≥ 0: met), in the check's unit"
    return finish_axes(plt, fig, ax, path, xlabel, "")


def fmt_number(value: float, digits: int = 3) -> str:
    """A number as the report prints it: ``digits`` significant digits, or thousands grouped
    from 1,000 on ("nan" stays "nan")."""
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def spread_lines(name: str, runs: list[dict], check_lists: list[list[Check]]) -> list[str]:
    """Markdown for the spread of ``runs`` (the headline first, then its repeats): the checks
    on the mean, then the numbers of ``SPREAD_FIELDS[name]``."""
    seeds = ", ".join(str(r["settings"]["seed"]) for r in runs)
    folders = ", ".join(f"`reports/{r['_dir']}/`" for r in runs)
    lines = [
        f"Over seeds {seeds} ({len(runs)} runs of the same code: {folders}), mean ± sample sd:",
        "",
        "| figure | per seed | mean ± sd | target | on the mean | seeds met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in check_spread(check_lists):
        unit = f" {s.unit}" if s.unit else ""
        unmeasured = sum(math.isnan(v) for v in s.values)
        verdict = verdict_cell(s.on_mean, f"not measured in {unmeasured} of {len(s.values)} seeds")
        lines.append(
            f"| {s.figure} | {' / '.join(fmt_number(v) for v in s.values)} | "
            f"{fmt_number(s.mean)} ± {fmt_number(s.sd)}{unit} | "
            f"{s.op} {fmt_number(s.target)}{unit} | {verdict} | "
            f"{s.met_count} of {len(s.values)} |"
        )
    patterns = SPREAD_FIELDS.get(name, ())
    numbers = [row for pattern in patterns for row in field_spread(runs, pattern)]
    if numbers:
        lines += ["", "| number | per seed | mean ± sd |", "| --- | --- | --- |"]
        for label, values in numbers:
            mean, sd = mean_sd(values)
            lines.append(
                f"| {label} | {' / '.join(fmt_number(v, 4) for v in values)} | "
                f"{fmt_number(mean, 4)} ± {fmt_number(sd, 2)} |"
            )
    return lines + [""]
