"""Plots of the multi-device experiment (QML-IB Figs. 2(a)–(c), 3, 4, Theorem 2), drawn from
the results dict: error (%) with ±1 sd bars over the seeds run. In Fig. 2(a) VDDIB-SR stands at
the latency it measured (expected symbols sent on the test images / baud), not its budget."""

from __future__ import annotations

from pathlib import Path

from trainer.experiments.common import finish_axes, new_axes

STYLE = {
    "ours 4 bits": {"color": "C0", "marker": "o"},
    "ours unquantized": {"color": "C0", "marker": "o", "ls": "--", "mfc": "none"},
    "VDDIB 4 bits": {"color": "C3", "marker": "s"},
    "VDDIB unquantized": {"color": "C3", "marker": "s", "ls": "--", "mfc": "none"},
    "VDDIB-SR 4 bits": {"color": "C2", "marker": "^"},
    "VDDIB-SR unquantized": {"color": "C2", "marker": "^", "ls": "--", "mfc": "none"},
    "ours 4 bits, trained at each PSNR": {"color": "C1", "marker": "o"},
    "ours unquantized, trained at each PSNR": {
        "color": "C1",
        "marker": "o",
        "ls": "--",
        "mfc": "none",
    },
}


def _lines(path: Path, table: dict, to_x, xlabel: str, title: str, sent_to_x=None) -> str:
    """One line per method; ``sent_to_x`` places a point by its "symbols_sent" where it has
    one (VDDIB-SR), ``to_x`` by its key otherwise."""
    plt, fig, ax = new_axes()
    for method, row in table.items():
        xs = list(row)
        pos = [sent_to_x(row[x]["symbols_sent"]) if sent_to_x and "symbols_sent" in row[x]
               else to_x(x) for x in xs]  # fmt: skip
        ax.errorbar(pos, [row[x]["mean"] for x in xs],
                    yerr=[row[x]["sd"] for x in xs], capsize=3, ms=4, label=method,
                    **STYLE.get(method, {}))  # fmt: skip
    return finish_axes(plt, fig, ax, path, xlabel, "test error (%)", title).name


def _bars(path: Path, groups: dict[str, dict], title: str) -> str:
    plt, fig, ax = new_axes()
    names = list(groups)
    inner = list(next(iter(groups.values())))
    width = 0.8 / len(inner)
    for j, key in enumerate(inner):
        xs = [i + (j - (len(inner) - 1) / 2) * width for i in range(len(names))]
        ax.bar(xs, [groups[n][key]["mean"] for n in names], width,
               yerr=[groups[n][key]["sd"] for n in names], capsize=3, label=key)  # fmt: skip
    ax.set_xticks(range(len(names)), names)
    low = min(groups[n][k]["mean"] for n in names for k in inner)
    ax.set_ylim(bottom=max(0.0, low - 3))
    return finish_axes(plt, fig, ax, path, "", "test error (%)", title).name


def _theorem2(path: Path, rows: dict) -> str:
    plt, fig, ax = new_axes()
    names = list(rows)
    ax.semilogy(range(len(names)), [rows[n]["max_gap_nats"] for n in names], "o",
                label="largest measured gap D*_KL − D_KL")  # fmt: skip
    ax.semilogy(range(len(names)), [rows[n]["min_bound_nats"] for n in names], "s",
                label="smallest bound (19)")  # fmt: skip
    ticks = [n.replace("ours ", "").replace(" | ", ", ") for n in names]
    ax.set_xticks(range(len(names)), ticks, rotation=80, fontsize=6)
    fig.set_size_inches(8, 5)
    theorem = "Theorem 2 on trained models, each at the PSNR it trained at"
    return finish_axes(plt, fig, ax, path, "model (ours)", "nats per example", theorem).name


def _fig2c(r: dict) -> dict:
    """Fig. 2(c)'s lines, with ours trained at each test PSNR where the results have it."""
    matched = r.get("fig2c_ours_trained_at_each_psnr", {})
    return r["fig2c_error_vs_psnr"] | {f"{m}, trained at each PSNR": row
                                        for m, row in matched.items()}  # fmt: skip


def _fig4(path: Path, r: dict) -> str:
    """Fig. 4 as error against latency, each method without (solid) and with (dotted) overlap;
    results from before the latency sweep give bars at 5 ms."""
    title = f"QML-IB Fig. 4: {100 * r['overlap_fraction']:.0f}% overlap, K = 2, 10 dB"
    by_total = r.get("fig4_overlap_vs_symbols")
    if not by_total:
        return _bars(path, r["fig4_overlap"], title)
    return _overlap_lines(path, by_total, lambda t: 1e3 * int(t) / r["baud"],
                          "latency, both links (ms; budget)", title)  # fmt: skip


def _fig4_over_psnr(path: Path, r: dict) -> list[str]:
    """Fig. 4 at 5 ms against the test PSNR, where the results have it (else no plot)."""
    if "fig4_overlap_vs_psnr" not in r:
        return []
    title = (f"QML-IB Fig. 4 over PSNR: {100 * r['overlap_fraction']:.0f}% overlap, K = 2, 5 ms,"
             " ours trained at 10 dB (baselines noise-free)")  # fmt: skip
    table = r["fig4_overlap_vs_psnr"] | r.get("fig4_ours_trained_at_each_psnr", {})
    return [_overlap_lines(path, table, float, "test PSNR (dB)", title)]


def _overlap_lines(path: Path, table: dict, to_x, xlabel: str, title: str) -> str:
    """{method: {x: {"no overlap": stats, "overlap": stats}}} as one solid (without) and one
    dotted (with overlap) line per method."""
    plt, fig, ax = new_axes()
    for method, rows in table.items():
        xs = [to_x(x) for x in rows]
        style = {k: v for k, v in STYLE[method].items() if k != "ls"}
        for key, ls in (("no overlap", "-"), ("overlap", ":")):
            ax.errorbar(xs, [row[key]["mean"] for row in rows.values()],
                        yerr=[row[key]["sd"] for row in rows.values()], capsize=3, ms=4, ls=ls,
                        label=f"{method}, {key}", **style)  # fmt: skip
    return finish_axes(plt, fig, ax, path, xlabel, "test error (%)", title).name


def make_plots(out_dir: Path, r: dict) -> list[str]:
    baud = r["baud"]
    fig3 = r["fig3_error_vs_bits"]
    return [
        _lines(out_dir / "fig2a_error_vs_latency.png", r["fig2a_error_vs_symbols"],
               lambda t: 1e3 * int(t) / baud, "latency, both links (ms; VDDIB-SR: expected)",
               "QML-IB Fig. 2(a): K = 2, PSNR 10 dB", lambda sent: 1e3 * sent / baud),
        _lines(out_dir / "fig2b_error_vs_k.png", r["fig2b_error_vs_k"], int, "devices K",
               "QML-IB Fig. 2(b): 48 symbols (5 ms), PSNR 10 dB"),
        _lines(out_dir / "fig2c_error_vs_psnr.png", _fig2c(r), float, "test PSNR (dB)",
               "QML-IB Fig. 2(c): K = 2, 5 ms, trained at 10 dB (baselines noise-free)"),
        _bars(out_dir / "fig3_error_vs_bits.png", {"ours, K = 2": fig3},
              "QML-IB Fig. 3: bits per symbol (K = 2, 10 dB, 5 ms)"),
        _fig4(out_dir / "fig4_overlap.png", r),
        *_fig4_over_psnr(out_dir / "fig4_overlap_vs_psnr.png", r),
        _theorem2(out_dir / "theorem2_gap_vs_bound.png", r["theorem2"]),
    ]  # fmt: skip
