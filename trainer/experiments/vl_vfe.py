"""VL-VFE as the paper writes it, against its own baselines: Table III, Figs. 3, 6, 7, 9, 10.

The models (``vl_vfe_parts``): static VFE with the log-uniform prior and the Gaussian one,
DeepJSCC (fixed n, cross-entropy only), learning-based quantization at the eq. (13) capacity,
and the variable-length VL-VFE, all with the paper's Table I network, trained in one run.
Measured:
- Table III: best accuracy within 3.25 ms at 9,600 Baud (31 analog symbols, or
  ⌊0.00325·9600·C(p)⌋ bits) at PSNR 10, 15, 20, 25 dB, proposed / DeepJSCC / quantization;
- Figs. 3/4: accuracy against latency at 10 and 20 dB for the three;
- Fig. 6: VL-VFE and DeepJSCC (n = 36, trained at 20 dB) over PSNR 10-25 dB;
- Figs. 9/10 (App. C): VL-VFE told the PSNR by m = 0 (10 dB assumed), 8 or ∞ pilots;
- Figs. 7/8: Gaussian (learned mean and variance) against log-uniform prior at 20 dB:
  accuracy and active dimensions (γ_i > γ0 = 0.05).
Fashion-MNIST stands in for MNIST (``--task cifar10 --data-dir`` runs CIFAR-10 with the
convolutional device).
"""

from __future__ import annotations

from pathlib import Path

from trainer.experiments import vl_vfe_parts as parts
from trainer.experiments.common import Check, RunSettings, load_data, plot_lines
from trainer.experiments.grid import train_grid

NAME = "vl-vfe"
PAPER = "VL-VFE Table III, Figs. 3, 6, 7, 9, 10"
# the static models' and Table III baselines' epochs: the authors' static code trains 60 (the
# paper gives none); the dynamic models and Fig. 6's DeepJSCC train 10/3 as long (200, as the
# authors' dynamic code: parts.DYNAMIC_EPOCH_RATIO). In 20 epochs the dynamic model kept 63-64
# of 64 symbols at 10-20 dB with the authors' recipe; in 200 (β = 0.01, a scratch run) 64 / 64 /
# 28 / 22 at 10 / 15 / 20 / 25 dB, 1.5-2.5 points more accurate.
FULL_EPOCHS = 60
DYNAMIC_BETA = 1e-2  # the VL-VFE model of Figs. 6, 9, 10 (and of variable-length)
# β of the static VFE per PSNR: the paper sweeps [1e-4, 1e-2] on MNIST over 60 epochs; γ_i must
# fall from 1 to γ0, which needs larger β at low PSNR, where the log-uniform KL (α = σ²/z²)
# pushes less. More points at 10 and 20 dB (Fig. 3's curves). The smaller β at 10, 15 and 25 dB
# (inside the paper's range) are there for Table III: at 15 dB the best point within the budget
# used 13 of the 31 dimensions it may send, and no β between gave 20-31; 5e-3 at 10 dB, 4e-3 at
# 15 and 2e-3 at 25 fill the next gaps (63 -> 27, 46 -> 23 and 50 -> 22 dimensions between the
# neighbouring β in the run before).
FULL_PLAN = {
    "betas": {10.0: (3e-3, 5e-3, 1e-2, 3e-2, 1e-1), 15.0: (3e-3, 4e-3, 5e-3, 1e-2, 3e-2, 1e-1),
              20.0: (3e-3, 1e-2, 3e-2), 25.0: (1e-3, 2e-3, 3e-3, 1e-2)},
    "gaussian_betas": (1e-2,),
    "dynamic_betas": (DYNAMIC_BETA, 5e-3),
    "dynamic_variants": (("uniform-dB", DYNAMIC_BETA, parts.UNIFORM_DB),),
    "deepjscc": {10.0: (31,), 15.0: (31,), 20.0: (31, 36), 25.0: (31,)},
    "quant_bits": {10.0: (2, 4), 15.0: (2,), 20.0: (2, 4), 25.0: (2,)},
}  # fmt: skip
QUICK_PLAN = {
    "betas": {10.0: (3e-2,), 20.0: (3e-2,)},
    "gaussian_betas": (3e-2,),
    "dynamic_betas": (DYNAMIC_BETA,),
    "dynamic_variants": (("uniform-dB", DYNAMIC_BETA, parts.UNIFORM_DB),),
    "deepjscc": {10.0: (31,), 20.0: (31, 36)},
    "quant_bits": {10.0: (2,), 20.0: (2,)},
}
# VL-VFE's own numbers (MNIST), Table III and Figs. 6/7 text
PAPER_TABLE_III = {
    "proposed": (97.29, 97.79, 98.01, 98.17),
    "deepjscc": (97.04, 97.13, 97.45, 97.56),
    "quantization": (95.32, 95.96, 96.81, 97.12),
}
PAPER_FIG7 = {"gaussian": (95.91, 21), "log-uniform": (97.99, 32)}


def run(settings: RunSettings, out_dir: Path) -> dict:
    task = settings.extra.get("task", "fashion-mnist")
    data = load_data(task, settings.data_dir, settings.seed)
    plan = plan_for(task, settings.quick)
    psnrs = tuple(plan["betas"])
    job_list = parts.jobs(task, plan, settings.epochs)
    trained = dict(zip((j.label for j in job_list), train_grid(job_list, settings), strict=True))
    models = {label: {"train_wall_s": info["train_wall_s"], "params": info["params"]["total"]}
              for label, (_, info) in trained.items()}  # fmt: skip
    points = Evaluator(trained, data, settings.draws, settings.n_eval)
    static = static_points(points, plan, psnrs)
    table = table_iii(static, psnrs)
    prior = prior_points(points, plan)
    beta_g = plan["gaussian_betas"][-1]
    gammas = {name: parts.gamma_vector(trained[f"{key}/20/{beta_g:g}"][0])
              for name, key in (("log-uniform", "proposed"), ("gaussian", "gaussian"))}  # fmt: skip
    dj_label = f"deepjscc/{parts.DEEPJSCC_TRAIN_DB:g}/{parts.deepjscc_n(task)}"
    dynamic = dynamic_points(points, plan, dj_label, settings.seed)
    prefix = prefix_sweep(points, f"vl-vfe/{DYNAMIC_BETA:g}", DYNAMIC_BETA)
    results = {
        "task": task,
        "arch": parts.arch_for(task),
        "budget_ms": 1e3 * parts.BUDGET_S,
        "budget_dims": parts.budget_dims(),
        "gamma0": parts.GAMMA0,
        "plan": {
            k: (list(v) if isinstance(v, tuple) else {f"{p:g}": list(x) for p, x in v.items()})
            for k, v in plan.items()
        },
        "dynamic_beta": DYNAMIC_BETA,
        "deepjscc_dynamic": dj_label,
        "pilot_estimator": parts.ESTIMATOR,
        "psnr_db": list(psnrs),
        "models": models,
        "static": static,
        "table_iii": table,
        "prior_ablation": prior,
        "gamma_20db": gammas,
        "dynamic": dynamic,
        "prefix_sweep": prefix,
        "dynamic_epochs": parts.dynamic_epochs(settings.epochs),
        "paper": {"table_iii": PAPER_TABLE_III, "fig7": PAPER_FIG7},
    }
    results["plots"] = plots(results, out_dir)
    return results


def plan_for(task: str, quick: bool) -> dict:
    """The quick or full plan, with the task's DeepJSCC width among the DeepJSCC models
    trained at DEEPJSCC_TRAIN_DB (Fig. 6's DeepJSCC) if the plan lacks it."""
    plan = QUICK_PLAN if quick else FULL_PLAN
    if parts.deepjscc_n(task) not in plan["deepjscc"][parts.DEEPJSCC_TRAIN_DB]:
        plan = {**plan, "deepjscc": {**plan["deepjscc"], parts.DEEPJSCC_TRAIN_DB: (
            *plan["deepjscc"][parts.DEEPJSCC_TRAIN_DB], parts.deepjscc_n(task))}}  # fmt: skip
    return plan


def report_point(name: str, psnr_db: float, point: dict) -> dict:
    """Print a progress line for ``point`` (model ``name`` at ``psnr_db``) and return it."""
    print(f"    {name} at {psnr_db:g} dB: acc {point['accuracy']:.4f} "
          f"({point['n_active']:.1f} symbols)", flush=True)  # fmt: skip
    return point


class Evaluator:
    """The trained models, by job label, evaluated on the first ``n`` test examples of
    ``data`` (all when None) with ``draws`` noise draws per point."""

    def __init__(self, trained: dict, data, draws: int, n: int | None):
        self.trained, self.data, self.draws, self.n = trained, data, draws, n

    def point(self, label: str, beta: float, psnr_db: float, told_db=None, cap=None) -> dict:
        """Model ``label`` at β over a channel of ``psnr_db``, both ends told ``told_db``
        (default: the true PSNR), at most ``cap`` symbols sent; see
        :func:`vl_vfe_parts.analog_point`."""
        told = psnr_db if told_db is None else told_db
        model = self.trained[label][0]
        return parts.analog_point(model, self.data, beta, psnr_db, told, self.draws, self.n,
                                  cap=cap)  # fmt: skip

    def quantized(self, label: str, psnr_db: float) -> dict:
        """Quantization model ``label``'s point at ``psnr_db``'s capacity (see
        :func:`vl_vfe_parts.quantized_point`)."""
        return parts.quantized_point(self.trained[label][0], self.data, psnr_db, self.n)

    def analog(self, label: str, beta: float, psnr_db: float) -> dict:
        """:meth:`point` told the true PSNR, with a progress line."""
        return report_point(label, psnr_db, self.point(label, beta, psnr_db))


def static_points(points: Evaluator, plan: dict, psnrs) -> dict:
    """Table III and Fig. 3: PSNR -> method -> [points] of the static VFE models (one per
    β), DeepJSCC (one per n) and every quantization model."""
    static = {}
    for p in psnrs:
        static[f"{p:g}"] = {
            "proposed": [points.analog(f"proposed/{p:g}/{b:g}", b, p) | {"beta": b}
                         for b in plan["betas"][p]],
            "deepjscc": [points.analog(f"deepjscc/{p:g}/{k}", 1.0, p) | {"n": k}
                         for k in plan["deepjscc"][p]],
            "quantization": [points.quantized(label, p) | {"model": label}
                             for label in points.trained if label.startswith("quantization/")],
        }  # fmt: skip
    return static


def prior_points(points: Evaluator, plan: dict) -> dict:
    """Figs. 7/8: the log-uniform and the Gaussian prior's static models at 20 dB, per β."""
    return {
        "log-uniform": [points.analog(f"proposed/20/{b:g}", b, 20.0) | {"beta": b}
                        for b in plan["betas"][20.0]],
        "gaussian": [points.analog(f"gaussian/20/{b:g}", b, 20.0) | {"beta": b}
                     for b in plan["gaussian_betas"]],
    }  # fmt: skip


def dynamic_points(points: Evaluator, plan: dict, deepjscc_label: str, seed: int) -> dict:
    """Figs. 6, 9, 10 over parts.PSNRS: DeepJSCC (n fixed), VL-VFE told the PSNR by m pilots
    ("m=0", "m=8", "m=inf"), and VL-VFE at the plan's other β with m = ∞."""
    dynamic = {"deepjscc": [points.analog(deepjscc_label, 1.0, p) for p in parts.PSNRS]}
    count = len(parts.subset(points.data, points.n)[0])  # --n-eval may exceed a small test set
    for m in parts.PILOTS:
        key = "m=inf" if m is None else f"m={m}"
        dynamic[key] = []
        for p in parts.PSNRS:
            told = parts.told_psnr(p, m, count, seed=seed + int(p))
            point = points.point(f"vl-vfe/{DYNAMIC_BETA:g}", DYNAMIC_BETA, p, told)
            point["told_psnr_db_mean"] = float(told.mean())
            dynamic[key].append(report_point(f"vl-vfe {key}", p, point))
    for beta in plan["dynamic_betas"][1:]:  # other β, m = ∞
        dynamic[f"m=inf, β={beta:g}"] = [
            points.point(f"vl-vfe/{beta:g}", beta, p) for p in parts.PSNRS
        ]
    for name, beta, _ in plan.get("dynamic_variants", ()):  # training options, m = ∞
        dynamic[f"m=inf, {name}, β={beta:g}"] = [
            points.point(parts.variant_label(name, beta), beta, p) for p in parts.PSNRS
        ]
    return dynamic


PREFIX_CAPS = (8, 16, 24, 32, 36, 48, 64)


def prefix_sweep(points: Evaluator, label: str, beta: float) -> dict:
    """Fig. 6's VL-VFE model sending at most the first k symbols of its prefix, per PSNR
    {PSNR: [point per k in PREFIX_CAPS]}: what the symbols past k add to the accuracy (the
    pruning rule γ_i > γ0 sends the rest)."""
    return {f"{p:g}": [points.point(label, beta, p, cap=k) | {"cap": k} for k in PREFIX_CAPS]
            for p in parts.PSNRS}  # fmt: skip


def table_iii(static: dict, psnrs) -> dict:
    """Per PSNR and method: the best point within the budget, and the proposed method's best
    accuracy at any latency (its unconstrained accuracy)."""
    table = {}
    for p in psnrs:
        row = {m: parts.best_within(points) for m, points in static[f"{p:g}"].items()}
        row["proposed_unconstrained"] = max(
            (q["accuracy"] for q in static[f"{p:g}"]["proposed"]), default=None)  # fmt: skip
        table[f"{p:g}"] = row
    return table


def plots(results: dict, out_dir: Path) -> list[str]:
    names = []
    for p in parts.CURVE_PSNRS:
        if f"{p:g}" not in results["static"]:
            continue
        series = {}
        for method, points in results["static"][f"{p:g}"].items():
            points = sorted(points, key=lambda q: q["latency_ms"])
            series[method] = ([q["latency_ms"] for q in points], [q["accuracy"] for q in points])
        path = plot_lines(out_dir / f"fig3_accuracy_vs_latency_{p:g}db.png", series,
                          "latency (ms)", "accuracy", f"PSNR {p:g} dB (VL-VFE Fig. 3)")  # fmt: skip
        names.append(path.name)
    for metric, ylabel in (("latency_ms", "latency (ms)"), ("accuracy", "accuracy")):
        series = {key: (parts.PSNRS, [q[metric] for q in points])
                  for key, points in results["dynamic"].items()}  # fmt: skip
        title = "VL-VFE (m pilots) vs DeepJSCC (VL-VFE Figs. 6, 9, 10)"
        path = plot_lines(out_dir / f"fig6_9_10_{metric}_vs_psnr.png", series, "PSNR (dB)",
                          ylabel, title)  # fmt: skip
        names.append(path.name)
    sweep = results["prefix_sweep"]
    series = {f"{p} dB": ([q["n_active"] for q in pts], [q["accuracy"] for q in pts])
              for p, pts in sweep.items()}  # fmt: skip
    dj = results["dynamic"]["deepjscc"]
    series["DeepJSCC (n fixed)"] = ([q["n_active"] for q in dj], [q["accuracy"] for q in dj])
    path = plot_lines(out_dir / "prefix_sweep.png", series, "symbols sent (at most k)",
                      "accuracy", "VL-VFE: the first k symbols of the prefix, per PSNR",
                      styles={"DeepJSCC (n fixed)": {"ls": "none", "marker": "x"}})  # fmt: skip
    names.append(path.name)
    dims = list(range(1, len(results["gamma_20db"]["log-uniform"]) + 1))
    path = plot_lines(out_dir / "fig7_gamma.png",
                      {k: (dims, v) for k, v in results["gamma_20db"].items()}, "dimension i",
                      "γ_i", f"20 dB, γ0 = {results['gamma0']:g} (VL-VFE Fig. 7)")  # fmt: skip
    names.append(path.name)
    return names


def _acc(point) -> float:
    return float("nan") if point is None else 100.0 * point["accuracy"]


def _worst(values, pick=min) -> float:
    """min or max that is NaN when any value is (a missing point misses its check)."""
    values = list(values)
    return float("nan") if any(v != v for v in values) else pick(values)


def margins(results: dict) -> dict:
    """The figures the checks compare, in accuracy points and ms."""
    table = results["table_iii"]
    rows = list(table.values())
    dynamic = results["dynamic"]
    above = [i for i, p in enumerate(parts.PSNRS) if p > 10.0]
    dj = dynamic["deepjscc"]

    def err(key, i):
        return 100.0 * (1.0 - dynamic[key][i]["accuracy"])

    return {
        "proposed_minus_deepjscc": _worst(_acc(r["proposed"]) - _acc(r["deepjscc"]) for r in rows),
        "deepjscc_minus_quant": _worst(_acc(r["deepjscc"]) - _acc(r["quantization"]) for r in rows),
        "proposed_shortfall": _worst((100.0 * r["proposed_unconstrained"] - _acc(r["proposed"])
                                      for r in rows), max),
        "fig6_latency_gap": max(dynamic["m=inf"][i]["latency_ms"] - dj[i]["latency_ms"]
                                for i in above),
        "fig6_accuracy_gap": min(100.0 * (dynamic["m=inf"][i]["accuracy"] - dj[i]["accuracy"])
                                 for i in above),
        "pilots_inf_minus_8": max(err("m=inf", i) - err("m=8", i) for i in range(len(dj))),
        "pilots_8_minus_0": max(err("m=8", i) - err("m=0", i) for i in range(len(dj))),
        "pilots_latency_gap": max(dynamic[k][i]["latency_ms"] - dj[i]["latency_ms"]
                                  for k in ("m=0", "m=8", "m=inf") for i in above),
        "m0_minus_deepjscc": min(100.0 * (dynamic["m=0"][i]["accuracy"] - dj[i]["accuracy"])
                                 for i in range(len(dj))),
    }  # fmt: skip


def checks(results: dict) -> list[Check]:
    m = margins(results)
    noise = 0.3  # one noise-draw sd of a 10,000-image accuracy is ~0.1-0.2 points
    return [
        Check("Table III: min over PSNR of proposed − DeepJSCC", m["proposed_minus_deepjscc"],
              ">=", 0.0, "points", "proposed 97.29-98.17 ≥ DeepJSCC 97.04-97.56 at every PSNR"),
        Check("Table III: min over PSNR of DeepJSCC − quantization", m["deepjscc_minus_quant"],
              ">=", 0.0, "points", "DeepJSCC ≥ quantization 95.32-97.12 at every PSNR"),
        Check("Table III: max over PSNR of proposed's unconstrained − within-budget accuracy",
              m["proposed_shortfall"], "<=", 1.0, "points", "(our target)"),
        Check("Fig. 6: max over PSNR > 10 dB of VL-VFE − DeepJSCC latency",
              m["fig6_latency_gap"], "<=", 0.0, "ms", "VL-VFE lower latency than DeepJSCC"),
        Check("Fig. 6: min over PSNR > 10 dB of VL-VFE − DeepJSCC accuracy",
              m["fig6_accuracy_gap"], ">=", -0.5, "points", "VL-VFE higher accuracy"),
        Check("Fig. 9: max over PSNR of error(m=∞) − error(m=8)", m["pilots_inf_minus_8"],
              "<=", noise, "points", "more pilots, lower error"),
        Check("Fig. 9: max over PSNR of error(m=8) − error(m=0)", m["pilots_8_minus_0"],
              "<=", noise, "points", "more pilots, lower error"),
        Check("Fig. 10: max over m, PSNR > 10 dB of VL-VFE − DeepJSCC latency",
              m["pilots_latency_gap"], "<=", 0.0, "ms", "lower latency in all three cases"),
        Check("Fig. 9: min over PSNR of VL-VFE (m=0) − DeepJSCC accuracy",
              m["m0_minus_deepjscc"], ">=", -1.0, "points", "m = 0 comparable to DeepJSCC"),
    ]  # fmt: skip


def summary_rows(results: dict) -> list[tuple[str, str]]:
    rows = []
    paper = results["paper"]["table_iii"]
    for method in ("proposed", "deepjscc", "quantization"):
        ours = []
        for p, row in results["table_iii"].items():
            best = row[method]
            what = "" if best is None else (
                f" ({best['n_active']:.0f} dims)" if method != "quantization"
                else f" ({best['model'].split('/')[1]} bits)")  # fmt: skip
            ours.append(f"{p} dB {_acc(best):.2f}{what}")
        rows.append((f"Table III {method}, ≤ {results['budget_ms']:g} ms (paper MNIST "
                     f"{' / '.join(map(str, paper[method]))})", "; ".join(ours)))  # fmt: skip
    rows.append(("proposed, unconstrained (best at any latency)", "; ".join(
        f"{p} dB {100 * r['proposed_unconstrained']:.2f}"
        for p, r in results["table_iii"].items())))  # fmt: skip
    for key, points in results["dynamic"].items():
        label = "DeepJSCC n fixed, 20 dB" if key == "deepjscc" else f"VL-VFE {key}"
        rows.append((f"Figs. 6/9/10 {label}: symbols / ms / accuracy per PSNR", "; ".join(
            f"{q['psnr_db']:g} dB: {q['n_active']:.1f} / {q['latency_ms']:.2f} / "
            f"{q['accuracy']:.4f}" for q in points)))  # fmt: skip
    rows.append((f"VL-VFE (β = {results['dynamic_beta']:g}) sending at most k symbols: "
                 "accuracy at k = " + " / ".join(str(k) for k in PREFIX_CAPS), "; ".join(
        f"{p} dB: " + " / ".join(f"{100 * q['accuracy']:.2f}" for q in pts)
        for p, pts in results["prefix_sweep"].items())))  # fmt: skip
    fig7 = results["paper"]["fig7"]
    for name, points in results["prior_ablation"].items():
        label = (f"Fig. 7 {name} prior at 20 dB (paper MNIST {fig7[name][0]}%, "
                 f"{fig7[name][1]} dims): accuracy / active dims per β")  # fmt: skip
        cells = [f"β={q['beta']:g}: {q['accuracy']:.4f} / {q['n_active']:.0f}" for q in points]
        rows.append((label, "; ".join(cells)))
    return rows


def notes(results: dict) -> str:
    m = margins(results)
    return (
        f"{results['task']} with VL-VFE's Table I network (device: one FC layer + tanh, "
        f"arch {results['arch']!r}); Fashion-MNIST stands in for MNIST, so accuracies sit ~10 "
        "points below the paper's and only the orderings and margins compare. The budget "
        f"{results['budget_ms']:g} ms at 9,600 Baud is {results['budget_dims']} analog symbols; "
        "the quantization baseline gets ⌊0.00325·9600·C(PSNR)⌋ bits at the eq. (13) capacity "
        "and its levels arrive without error. DeepJSCC is cross-entropy only. Pilots: σ̂² = "
        "(1/m)·Σ(y_i − p_i)² from m real ±1 pilots (unbiased because the pilots are known; "
        "the paper's printed 1/(m−1) is biased by m/(m−1)), both ends told the same estimate. "
        "This run's seed (the seed repeats, where there are any, are in the table over seeds): "
        f"Table III margins: proposed − DeepJSCC ≥ {m['proposed_minus_deepjscc']:.2f}, "
        f"DeepJSCC − quantization ≥ {m['deepjscc_minus_quant']:.2f} points; Fig. 6: VL-VFE "
        f"latency at most {m['fig6_latency_gap']:+.2f} ms from DeepJSCC's above 10 dB, "
        f"accuracy ≥ {m['fig6_accuracy_gap']:+.2f} points."
    )
