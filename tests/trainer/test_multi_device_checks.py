"""The multi-device experiment's targets and its seed rule, on hand-made numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.experiments import multi_device
from trainer.experiments.multi_device_checks import FIGS, checks, notes, summary_rows
from trainer.qml_runs import Point, Runs


def _stat(mean, sd=0.1, method="", budget=48):
    stat = {"mean": mean, "sd": sd, "n": 3, "values": [mean - sd, mean, mean + sd]}
    if method.startswith("VDDIB-SR"):  # sent exactly its latency budget
        stat |= {"symbols_sent": float(budget), "symbols_budget": budget}
    return stat


def _results(vddib_at_20db=14.0, err4=12.0, err_none=11.9, overlap=11.5, gap=5.0, sr=None):
    """Hand-made results; ``sr`` (error %) adds VDDIB-SR at that error everywhere."""
    methods = {"ours 4 bits": 12.0, "ours unquantized": 11.9, "VDDIB 4 bits": 14.0,
               "VDDIB unquantized": 13.5}  # fmt: skip
    if sr is not None:
        methods |= {"VDDIB-SR 4 bits": sr, "VDDIB-SR unquantized": sr}
    latency = {"16": 2.0, "32": 1.0, "48": 0.0}  # error falls with latency
    fig2a = {m: {t: _stat(e + d, method=m, budget=int(t)) for t, d in latency.items()}
             for m, e in methods.items()}  # fmt: skip
    fig2b = {m: {k: _stat(e, method=m) for k in ("1", "2", "4")} for m, e in methods.items()}
    fig2c = {m: {s: _stat(e, method=m) for s in ("0.0", "10.0", "20.0")}
             for m, e in methods.items()}  # fmt: skip
    fig2c["VDDIB 4 bits"]["20.0"] = _stat(vddib_at_20db)
    return {
        "fig2a_error_vs_symbols": fig2a,
        "fig2b_error_vs_k": fig2b,
        "fig2c_error_vs_psnr": fig2c,
        "fig3_error_vs_bits": {"1": _stat(13), "2": _stat(12.5), "4": _stat(err4),
                               "none": _stat(err_none)},  # fmt: skip
        "fig4_overlap": {"ours 4 bits": {"no overlap": _stat(12.0), "overlap": _stat(overlap)},
                         "VDDIB 4 bits": {"no overlap": _stat(14.0), "overlap": _stat(13.0)}},
        "theorem2": {"m": {"max_gap_over_bound": gap / 100.0, "min_kl_star_minus_kl": gap}},
        "baud": 9600.0,
    }  # fmt: skip


def _met(results, words: str) -> bool:
    (check,) = [c for c in checks(results) if words in c.figure]
    return check.met


def test_all_met_when_ours_leads_everywhere():
    assert all(c.met for c in checks(_results()))


def test_a_margin_inside_one_sd_misses():
    """VDDIB 0.15 points behind ours at one PSNR, with sds of 0.1: ahead, but not by 1 sd."""
    results = _results(vddib_at_20db=12.05)
    assert not _met(results, "ours − VDDIB, 4 bits")
    assert _met(results, "ours − VDDIB, unquantized")


def test_fig3_and_fig4_targets_can_miss():
    results = _results(err4=12.5, err_none=12.0, overlap=12.2)
    assert not _met(results, "4-bit − unquantized")  # 0.5 > 0.3 points
    assert not _met(results, "without − with overlap")  # overlap raised the error
    assert _met(results, "Theorem 2")


def _rows_with_fig4(results: dict) -> list[tuple[str, str]]:
    """summary_rows on the committed results with ``results``' Fig. 4 put in."""
    path = Path(__file__).parents[2] / "reports" / "multi-device" / "results.json"
    committed = json.loads(path.read_text())
    committed["fig4_overlap_vs_symbols"] = results["fig4_overlap_vs_symbols"]
    return summary_rows(committed)


def test_fig4_over_latency_misses_where_one_latency_misses():
    """Fig. 4 at each latency: the overlap must lower ours' error, and ours must stay below
    the baseline with overlap, at every one; the 5 ms point alone no longer decides."""
    results = _results(sr=13.0)
    by_total = {m: {t: {"no overlap": _stat(e + d, method=m, budget=int(t)),
                        "overlap": _stat(e + d - 0.4, method=m, budget=int(t))}
                    for t, d in {"16": 2.0, "32": 1.0, "48": 0.0}.items()}
                for m, e in {"ours 4 bits": 12.0, "VDDIB-SR 4 bits": 13.0}.items()}  # fmt: skip
    results["fig4_overlap_vs_symbols"] = by_total
    results["fig4_overlap"]["VDDIB-SR 4 bits"] = by_total["VDDIB-SR 4 bits"]["48"]
    assert _met(results, "without − with overlap, smallest over 1.67 / 3.33 / 5.00 ms")
    assert _met(results, "with overlap: VDDIB-SR − ours error, smallest over 1.67")
    by_total["ours 4 bits"]["16"]["overlap"] = _stat(14.8)  # worse with overlap at 1.67 ms
    assert not _met(results, "without − with overlap")
    assert not _met(results, "with overlap: VDDIB-SR − ours")  # 14.8 > VDDIB-SR's 14.6
    by_total["ours 4 bits"]["16"]["overlap"] = _stat(13.6)  # as before: every latency met
    by_psnr = {m: {s: {"no overlap": _stat(e + d), "overlap": _stat(e + d - 0.4)}
                   for s, d in {"0.0": 9.0, "20.0": -0.5}.items()}
               for m, e in {"ours 4 bits": 12.0, "VDDIB-SR 4 bits": 13.0}.items()}  # fmt: skip
    results["fig4_overlap_vs_psnr"] = by_psnr
    where = "smallest over 1.67 / 3.33 / 5.00 ms (10 dB) and 0–20 dB (5 ms)"
    assert _met(results, f"without − with overlap, {where}")
    assert _met(results, f"with overlap: VDDIB-SR − ours error, {where}")
    by_psnr["VDDIB-SR 4 bits"]["20.0"]["overlap"] = _stat(11.0)  # below ours at 20 dB
    assert not _met(results, "with overlap: VDDIB-SR − ours")
    assert _met(results, "without − with overlap")
    by_psnr["ours 4 bits"]["0.0"]["overlap"] = _stat(21.5)  # overlap costs ours at 0 dB
    assert not _met(results, "without − with overlap")
    by_total["VDDIB-SR 4 bits"]["32"]["overlap"]["symbols_sent"] = 36.0  # 12% over its 32
    assert not _met(results, "symbols sent / latency budget")
    sent = {name: v for name, v in _rows_with_fig4(results) if name.startswith("Fig. 4 symbols")}
    assert list(sent.values()) == ["16.0 → 16.0 (16) / 32.0 → 36.0 (32) / 48.0 → 48.0 (48)"]
    assert all(name.endswith("VDDIB-SR 4 bits") for name in sent)


def test_with_vddib_sr_the_checks_compare_against_it_and_keep_vddib_as_extra_rows():
    results = _results(sr=12.05)  # VDDIB-SR 0.05 points behind ours (4 bits): inside one sd
    figures = [c.figure for c in checks(results)]
    assert any(f.startswith("ours − VDDIB-SR, 4 bits") for f in figures)
    assert any(f.startswith("ours − VDDIB, 4 bits") for f in figures)  # the extra row
    assert not _met(results, "ours − VDDIB-SR, 4 bits")
    assert _met(results, "ours − VDDIB, 4 bits")
    assert _met(results, "symbols sent / latency budget")
    assert all(c.met for c in checks(_results(sr=13.0)))


def test_fig4_compares_ours_with_vddib_sr_where_the_overlap_results_have_it():
    results = _results(overlap=11.5, sr=13.0)  # VDDIB (no SR) with overlap 13.0: behind ours
    assert _met(results, "with overlap: VDDIB (no SR) − ours")
    sr = {"no overlap": _stat(12.5, method="VDDIB-SR"), "overlap": _stat(11.2, method="VDDIB-SR")}
    results["fig4_overlap"]["VDDIB-SR 4 bits"] = sr
    assert not _met(results, "with overlap: VDDIB-SR − ours")  # 0.3 points ahead of ours
    assert not any("VDDIB (no SR) − ours" in c.figure for c in checks(results))
    sr["overlap"]["symbols_sent"] = 52.0  # 8% over its 48
    assert not _met(results, "symbols sent / latency budget")


def test_fig4_rows_give_vddib_srs_symbols_sent():
    path = Path(__file__).parents[2] / "reports" / "multi-device" / "results.json"
    results = json.loads(path.read_text())
    fig4 = results["fig4_overlap"]
    fig4["VDDIB-SR 4 bits"] = {k: s | {"symbols_sent": 47.5, "symbols_budget": 48}
                               for k, s in fig4["VDDIB 4 bits"].items()}  # fmt: skip
    rows = {name: v for name, v in summary_rows(results)
            if name.startswith("Fig. 4 error % without / with")}  # fmt: skip
    assert len(rows) == len(fig4)
    (sr,) = [v for name, v in rows.items() if name.endswith("VDDIB-SR 4 bits")]
    assert sr.endswith("symbols sent (budget) 47.5 (48) / 47.5 (48)")
    assert not any("symbols sent" in v for name, v in rows.items() if "SR" not in name)


def test_vddib_sr_sending_over_its_budget_misses():
    results = _results(sr=13.0)
    results["fig2b_error_vs_k"]["VDDIB-SR 4 bits"]["4"]["symbols_sent"] = 52.0  # 8% over 48
    assert not _met(results, "symbols sent / latency budget")


def test_without_vddib_sr_vddib_is_the_baseline():
    figures = [c.figure for c in checks(_results())]
    assert not any("VDDIB-SR" in f for f in figures)
    assert any(f.startswith("ours − VDDIB, 4 bits") for f in figures)


def test_report_rows_and_notes_name_vddib_sr_where_results_have_it():
    """On the committed results with VDDIB-SR taken out (as results written before it have
    them), then with VDDIB-SR added."""
    path = Path(__file__).parents[2] / "reports" / "multi-device" / "results.json"
    results = json.loads(path.read_text())
    for key in (*FIGS, "beta_grid", "train_wall_s", "fig4_overlap"):
        results[key] = {m: row for m, row in results[key].items() if "VDDIB-SR" not in m}
    for later in ("fig4_overlap_vs_symbols", "fig4_overlap_vs_psnr", "option_vddib_sr_in_phases"):
        results.pop(later, None)  # added after VDDIB-SR: Fig. 4 at one point, no such option
    assert "Ours − VDDIB (4 bits)" in notes(results)
    assert [c.value for c in checks(results) if "(Fig. 4)" in c.figure] == [
        results["fig4_overlap"]["ours 4 bits"]["no overlap"]["mean"]
        - results["fig4_overlap"]["ours 4 bits"]["overlap"]["mean"],
        results["fig4_overlap"]["VDDIB 4 bits"]["overlap"]["mean"]
        - results["fig4_overlap"]["ours 4 bits"]["overlap"]["mean"],
    ]  # at 5 ms, against VDDIB
    assert not any("VDDIB-SR" in name for name, _ in summary_rows(results))
    for fig in FIGS:
        for quant in ("4 bits", "unquantized"):
            results[fig][f"VDDIB-SR {quant}"] = {
                x: s | {"symbols_sent": 47.5, "symbols_budget": int(x) if fig == FIGS[0] else 48}
                for x, s in results[fig][f"VDDIB {quant}"].items()
            }
    text = notes(results)
    assert "Ours − VDDIB-SR (4 bits)" in text and "Ours − VDDIB (4 bits)" in text
    sent = [v for name, v in summary_rows(results) if name.startswith("Fig. 2 symbols sent")]
    assert len(sent) == 6 and "47.5 (48)" in sent[0]


def test_results_of_the_earlier_design_say_rerun():
    (only,) = checks({"error_vs_k": {}})
    assert not only.met and "re-run" in only.figure


def _runs_with(errors: dict[Point, list[float]]) -> Runs:
    runs = Runs(data=None, betas={}, epochs=1, draws=1, train_psnr=10.0)
    for point, values in errors.items():
        runs.errors[point.label] = {seed: {10.0: v} for seed, v in enumerate(values)}
    return runs


def test_only_comparisons_closer_than_a_point_get_more_seeds():
    a, b = Point("ours", 4), Point("vddib", 4)
    c, d = Point("ours", None), Point("vddib", None)
    runs = _runs_with({a: [0.120], b: [0.125], c: [0.110], d: [0.150]})
    assert runs.close_pairs([(a, b), (c, d)]) == {a, b}  # 0.5 vs 4 points


def test_points_reject_uneven_splits_and_unknown_methods():
    with pytest.raises(ValueError, match="split"):
        Point("ours", 4, k=4, total=18)
    with pytest.raises(ValueError, match="family"):
        Point("vddib-x", 4)
    assert multi_device.ref(Point("ours", 4), k=4).label.startswith("ours 4 bits | K=4")


def test_ours_trained_at_another_psnr_is_compared_at_that_psnr():
    ours15 = multi_device.ref(Point("ours", 4), train_psnr=15.0)
    sr = Point("vddib-sr", 4)
    assert ours15.label.endswith("48 symbols, trained at 15 dB")
    runs = _runs_with({sr: [0.300]})  # at 10 dB, 18 points from ours' 15 dB error
    runs.errors[ours15.label] = {0: {15.0: 0.120}}
    runs.errors[sr.label][0][15.0] = 0.125
    assert runs.values(ours15) == [0.120]  # by default at the PSNR it trained at
    assert runs.close_pairs([(ours15, sr)], (15.0,)) == {ours15, sr}  # 0.5 points at 15 dB
    runs.errors[sr.label][0] = {10.0: 0.121, 15.0: 0.200}  # close only at 10 dB, where
    assert runs.close_pairs([(ours15, sr)], (15.0,)) == set()  # ours15 was not tested


def test_fig2c_with_ours_trained_at_each_psnr_is_checked_against_vddib_sr():
    results = _results(sr=13.0)  # ours 12.0 / 11.9 (unquantized) at every PSNR
    psnrs = results["fig2c_error_vs_psnr"]["ours 4 bits"]
    matched = {"ours 4 bits": {s: _stat(11.0) for s in psnrs},
               "ours unquantized": {s: _stat(11.5) for s in psnrs}}  # fmt: skip
    results["fig2c_ours_trained_at_each_psnr"] = matched
    assert _met(results, "ours trained at each test PSNR − VDDIB-SR 4 bits")
    assert _met(results, "ours trained at each test PSNR − VDDIB-SR unquantized")
    matched["ours 4 bits"]["20.0"] = _stat(12.95)
    assert not _met(results, "ours trained at each test PSNR − VDDIB-SR 4 bits")  # 0.05 < sd
    assert "trained at each test PSNR: +2.00 at 0 dB" in notes(results)
    path = Path(__file__).parents[2] / "reports" / "multi-device" / "results.json"
    committed = json.loads(path.read_text()) | {"fig2c_ours_trained_at_each_psnr": matched}
    rows = [n for n, _ in summary_rows(committed) if n.startswith("Fig. 2") and n.endswith("PSNR")]
    assert len(rows) == 2
