"""The runs behind QML-IB Figs. 2–4: one model per (method, setting, seed), seeds added where
a comparison is close, and Theorem 2 measured on every quantized model of ours.

A ``Point`` is one setting of one method: ours (QML-IB, shared/nn/qml_ib.py) or the VDDIB
baseline (shared/nn/vddib.py), quantized (bits) or not, K devices sharing ``total`` symbols per
observation (d = total/K each; latency = total/baud), views with ``overlap`` pixels.
``Runs`` trains each point at PSNR ``train_psnr`` for the seeds asked, tests it at every PSNR
asked and keeps the errors (fractions) by label, seed and PSNR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shared.nn.qml_ib import QmlIbModel
from shared.nn.vddib import VddibModel
from trainer import qml_theorem2 as th2
from trainer.qml_train import Split, error_rate, noise_var, train

FAMILIES = ("ours", "vddib")
CLOSE_POINTS = 1.0  # a comparison whose margin is under this many points gets 3 seeds
THEOREM2_EXAMPLES = 32


@dataclass(frozen=True)
class Point:
    family: str  # "ours" | "vddib"
    bits: int | None  # None = unquantized
    k: int = 2
    total: int = 48
    overlap: int = 0
    train_noise: bool = False  # VDDIB only: our option, trained through the link

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.total % self.k:
            raise ValueError(f"{self.total} symbols do not split over {self.k} devices")

    @property
    def method(self) -> str:
        name = "ours" if self.family == "ours" else "VDDIB"
        quant = "unquantized" if self.bits is None else f"{self.bits} bits"
        return f"{name} {quant}" + (", trained through the link" if self.train_noise else "")

    @property
    def label(self) -> str:
        extra = f", overlap {self.overlap} px" if self.overlap else ""
        return f"{self.method} | K={self.k}, {self.total} symbols{extra}"

    def build(self):
        d = self.total // self.k
        if self.family == "ours":
            return QmlIbModel(self.k, d, self.bits, self.overlap)
        return VddibModel(self.k, d, self.bits, self.overlap, train_noise=self.train_noise)


def theorem2_row(model: QmlIbModel, x: torch.Tensor, psnr_db: float) -> dict:
    """D*_KL, a Monte-Carlo D_KL and the bound (19) per device on ``x``: the worst ratio of
    gap to bound, the mean gap and bound (nats per example), Lemma 1's smallest D* − D."""
    var = noise_var(psnr_db)
    gaps, bounds, stars, kls = [], [], [], []
    with torch.no_grad():
        for k, device in enumerate(model.devices):
            mu, theta = device(model.views[k].crop(x))
            quantizer = model.quantizers[k]
            std = theta.clamp_min(1e-4).double().numpy()
            breaks = quantizer.breakpoints().double().numpy()
            log_pmf = th2.level_pmf_log(mu.double().numpy(), std, breaks)
            levels = quantizer.levels().double().numpy()
            pmf = np.exp(log_pmf)
            star = th2.kl_star(pmf, levels, var)
            mc = th2.kl_monte_carlo(pmf, levels, var, samples=256, seed=k)
            stars.append(star)
            kls.append(mc)
            gaps.append(star - mc)
            bounds.append(th2.theorem2_bound(log_pmf, levels, var))
    gap, bound = np.concatenate(gaps), np.concatenate(bounds)
    return {
        "max_gap_over_bound": float((gap / bound).max()),
        "mean_gap_nats": float(gap.mean()),
        "max_gap_nats": float(gap.max()),
        "mean_bound_nats": float(bound.mean()),
        "min_bound_nats": float(bound.min()),
        "min_kl_star_minus_kl": float(gap.min()),
        "mean_kl_star_nats": float(np.concatenate(stars).mean()),
        "mean_kl_nats": float(np.concatenate(kls).mean()),
        "examples": int(len(x)),
    }


class Runs:
    """Trains and tests points on demand; ``errors[label][seed][psnr]`` (fractions)."""

    def __init__(self, data: Split, betas: dict[str, float], epochs: int, draws: int,
                 train_psnr: float):  # fmt: skip
        self.data, self.betas, self.epochs, self.draws = data, betas, epochs, draws
        self.train_psnr = train_psnr
        self.errors: dict[str, dict[int, dict[float, float]]] = {}
        self.theorem2: dict[str, dict] = {}
        self.train_s: dict[str, list[float]] = {}
        self.models: dict[tuple[str, int], torch.nn.Module] = {}

    def add(self, point: Point, seed: int, model, train_wall_s: float) -> None:
        """Keep a trained model (from ``ensure`` or the β grid); Theorem 2 on ours, quantized."""
        self.models[(point.label, seed)] = model
        self.train_s.setdefault(point.label, []).append(train_wall_s)
        if point.family == "ours" and point.bits is not None:
            x = self.data.x_test[:THEOREM2_EXAMPLES]
            self.theorem2[f"{point.label}, seed {seed}"] = theorem2_row(model, x, self.train_psnr)

    def beta(self, point: Point) -> float:
        """The grid's β of the point's method; other bit depths of ours take the 4-bit β,
        the VDDIB option the noise-free VDDIB's β of its bit depth."""
        for name in (point.method, Point(point.family, 4 if point.bits else None).method):
            if name in self.betas:
                return self.betas[name]
        raise KeyError(f"no β for {point.method}: the grid did not cover it")

    def ensure(self, point: Point, seeds, psnrs=()) -> None:
        """Train ``point`` for every seed it lacks; test it at train_psnr and ``psnrs``."""
        psnrs = sorted({self.train_psnr, *psnrs})
        for seed in seeds:
            key = (point.label, seed)
            if key not in self.models:
                model = point.build()
                print(f"    train {point.label}, seed {seed} (β = {self.beta(point):g})",
                      flush=True)  # fmt: skip
                info = train(model, self.data, self.beta(point), self.train_psnr,
                             self.epochs, seed)  # fmt: skip
                self.add(point, seed, model, info["train_wall_s"])
            got = self.errors.setdefault(point.label, {}).setdefault(seed, {})
            for psnr in psnrs:
                if psnr not in got:
                    got[psnr] = error_rate(self.models[key], self.data.x_test, self.data.y_test,
                                           psnr, self.draws, seed)  # fmt: skip
            errors = ", ".join(f"{100 * got[p]:.2f}% at {p:g} dB" for p in psnrs)
            print(f"      {point.label}, seed {seed}: error {errors}", flush=True)

    def values(self, point: Point, psnr: float | None = None) -> list[float]:
        psnr = self.train_psnr if psnr is None else psnr
        return [by_psnr[psnr] for by_psnr in self.errors.get(point.label, {}).values()
                if psnr in by_psnr]  # fmt: skip

    def margin_points(self, a: Point, b: Point, psnr: float | None = None) -> float:
        """Mean error of b − mean error of a, in points."""
        return 100 * (np.mean(self.values(b, psnr)) - np.mean(self.values(a, psnr)))

    def close_pairs(self, pairs, psnrs=()) -> set[Point]:
        """The points of every pair whose margin is under CLOSE_POINTS at any PSNR tested."""
        close = set()
        for a, b in pairs:
            for psnr in (None, *psnrs):
                if psnr is not None and (not self.values(a, psnr) or not self.values(b, psnr)):
                    continue
                if abs(self.margin_points(a, b, psnr)) < CLOSE_POINTS:
                    close |= {a, b}
        return close
