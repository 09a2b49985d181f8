"""Was a run timed on free cores? Its models' wall time against their CPU time.

Hyper-VIB Table I compares training times, and every experiment here trains on one torch
thread, so a model trained on a free core spends about as much CPU time as wall time (the
committed runs: wall/CPU 1.00-1.03). A run that shared its cores with another job (two
experiments at once on the 2-core machine) shows it: ranging-regression's seeds 1 and 2, run
side by side, trained their hyper models in 1.72-1.73 times their CPU time, and their Table I
ratios fell from about 5x to about 4.1x. Such a run's accuracies stand (they do not depend on
the clock), its timings do not: ``make report-check`` names it (``report.busy_results``, by
``python -m trainer.experiments.report``; re-run it alone) and the report says so beside it.
"""

from __future__ import annotations

# wall/CPU above this: the model waited for a core for a fifth of its training time or more
BUSY_WALL_OVER_CPU = 1.25


def timed_models(results) -> list[tuple[str, float]]:
    """[(where in ``results``, wall/CPU)] for every record in it with both ``train_wall_s``
    and ``train_cpu_s`` (seconds, > 0), found at any depth."""
    found = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            wall, cpu = node.get("train_wall_s"), node.get("train_cpu_s")
            numbers = all(isinstance(v, (int, float)) for v in (wall, cpu))
            if numbers and wall > 0 and cpu > 0:
                found.append((where or "(top level)", wall / cpu))
            for key, value in node.items():
                walk(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(results, "")
    return found


def busy_cores(results: dict, limit: float = BUSY_WALL_OVER_CPU) -> str | None:
    """Why ``results``' timings cannot be trusted (its most delayed model's wall/CPU over
    ``limit``), or None when every timed model ran on a free core (or none was timed)."""
    timed = timed_models(results)
    if not timed:
        return None
    where, ratio = max(timed, key=lambda t: t[1])
    if ratio <= limit:
        return None
    return (
        f"timed on busy cores: {where} trained in {ratio:.2f}x its CPU time (limit {limit}x), "
        "so its wall times and time ratios are not comparable; re-run it alone"
    )
