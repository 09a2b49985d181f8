"""The runs behind QML-IB Figs. 2–4: one model per (method, setting, seed), seeds added where
a comparison is close, and Theorem 2 measured on every quantized model of ours.

A ``Point`` is one setting of one method: ours (QML-IB, shared/nn/qml_ib.py), the VDDIB
baseline without retransmission (shared/nn/vddib.py) or VDDIB-SR, the paper's baseline
(trainer/vddib_sr.py), quantized (bits) or not, K devices and ``total`` symbols per observation
summed over the links (latency = total/baud): d = total/K each for the fixed-length methods; for
VDDIB-SR ``total`` is the expected symbols sent (first round + retransmissions), its threshold
set on held-out images to meet it at each test PSNR. ``Runs`` trains each point at PSNR
``train_psnr`` (or the point's own ``train_psnr``) for the seeds asked, tests it at every PSNR
asked and keeps the errors (fractions) by label, seed and PSNR, and VDDIB-SR's symbols
actually sent.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shared.nn.qml_ib import QmlIbModel
from shared.nn.vddib import VddibModel
from shared.provenance import code_digest
from trainer import qml_theorem2 as th2
from trainer.qml_train import Split, inference_means, noise_var, train
from trainer.vddib_sr import VddibSrModel, calibrate, round_dims_for_budget

FAMILIES = ("ours", "vddib", "vddib-sr")
NAMES = {"ours": "ours", "vddib": "VDDIB", "vddib-sr": "VDDIB-SR"}
CLOSE_POINTS = 1.0  # a comparison whose margin is under this many points gets 3 seeds
THEOREM2_EXAMPLES = 32


@dataclass(frozen=True)
class Point:
    family: str  # "ours" | "vddib" | "vddib-sr"
    bits: int | None  # None = unquantized
    k: int = 2
    total: int = 48
    overlap: int = 0
    train_noise: bool = False  # VDDIB only: our option, trained through the link
    train_psnr: float | None = None  # dB; None: the runs' training PSNR

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.total % self.k:
            raise ValueError(f"{self.total} symbols do not split over {self.k} devices")
        if self.family == "vddib-sr":
            round_dims_for_budget(self.total, self.k)  # raises on a budget that does not split

    @property
    def method(self) -> str:
        name = NAMES[self.family]
        quant = "unquantized" if self.bits is None else f"{self.bits} bits"
        return f"{name} {quant}" + (", trained through the link" if self.train_noise else "")

    @property
    def label(self) -> str:
        extra = f", overlap {self.overlap} px" if self.overlap else ""
        if self.train_psnr is not None:
            extra += f", trained at {self.train_psnr:g} dB"
        return f"{self.method} | K={self.k}, {self.total} symbols{extra}"

    def build(self, seed: int = 0):
        """The point's untrained model, its initial weights drawn from ``seed`` (torch's
        global generator starts from a random seed in each process, so an unseeded build
        would make the run differ from one process to the next)."""
        torch.manual_seed(seed)
        d = self.total // self.k
        if self.family == "ours":
            return QmlIbModel(self.k, d, self.bits, self.overlap)
        if self.family == "vddib-sr":
            return VddibSrModel(self.k, round_dims_for_budget(self.total, self.k), self.bits,
                                self.overlap, train_noise=self.train_noise)  # fmt: skip
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


def score_point(point: Point, model, data: Split, psnr_db: float, draws: int, seed: int,
               on_validation: bool = False) -> dict:  # fmt: skip
    """{"error" (fraction), "sent" (symbols per observation; None for fixed length)} of a
    trained model of ``point`` at PSNR on the test images, or the held-out ones. VDDIB-SR's
    threshold is first set on the held-out images, at this PSNR, so that its expected symbols
    sent meet the point's budget ``point.total``."""
    if point.family == "vddib-sr":
        calibrate(model, data.x_val, psnr_db, point.total, seed)
    x, y = (data.x_val, data.y_val) if on_validation else (data.x_test, data.y_test)
    return inference_means(model, x, y, psnr_db, draws, seed)


@dataclass(frozen=True)
class TrainJob:
    """One model to train: ``point`` at ``seed`` with ``beta`` at PSNR ``psnr_db`` (dB)."""

    point: Point
    seed: int
    beta: float
    psnr_db: float
    epochs: int


@dataclass(frozen=True)
class ModelCache:
    """Trained models on disk, one file per job, so that a long run cut short (a session's end,
    a kill) resumes where it stopped, and a run of an experiment changed only in what it
    measures or reports trains only the models it lacks: ``train_jobs`` loads a job's model
    instead of training it when the file names the same job and the same ``version``, the
    digest of the code that trains it (``for_code``; None turns the cache off). A model loaded
    is the one training would give: the code is the same and every draw is seeded."""

    folder: Path
    version: str | None

    @classmethod
    def for_code(cls, folder: Path, paths: list[str]) -> ModelCache:
        """The cache in ``folder`` for the code under ``paths`` (repository-relative files and
        folders) as it is on disk (``shared.provenance.code_digest``)."""
        return cls(Path(folder), code_digest(paths))

    def path(self, job: TrainJob) -> Path:
        return self.folder / f"{hashlib.sha256(repr(job).encode()).hexdigest()[:20]}.pt"

    def load(self, job: TrainJob) -> tuple | None:
        """(model, train info) of ``job`` from an earlier run of this code, or None."""
        path = self.path(job)
        if self.version is None or not path.exists():
            return None
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("job") != repr(job) or blob.get("version") != self.version:
            return None
        model = job.point.build(job.seed)
        model.load_state_dict(blob["state_dict"])
        print(f"    reuse {job.point.label}, seed {job.seed} (β = {job.beta:g}) from {path}",
              flush=True)  # fmt: skip
        return model.eval(), blob["info"]

    def save(self, job: TrainJob, state_dict: dict, info: dict) -> None:
        if self.version is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        blob = {"job": repr(job), "version": self.version, "state_dict": state_dict, "info": info}
        part = self.path(job).with_suffix(".part")
        torch.save(blob, part)
        part.replace(self.path(job))  # a run killed while writing leaves no half file behind


def train_jobs(data: Split, jobs: list[TrainJob], workers: int = 1,
               cache: ModelCache | None = None) -> list[tuple]:  # fmt: skip
    """(model, train info) per job, in job order: from ``cache`` where it holds the job, the
    rest trained in this process or over ``workers`` spawned processes, each with this
    process's torch thread count (and saved to ``cache`` as each finishes). A model comes out
    the same either way: ``Point.build`` and ``qml_train.train`` seed everything they draw
    from."""
    found = {job: cache.load(job) for job in jobs} if cache is not None else {}
    todo = [job for job in jobs if found.get(job) is None]
    if workers <= 1 or len(todo) <= 1:
        trained = [_train_job(job, data, cache) for job in todo]
    else:
        trained = _train_in_workers(data, todo, workers, cache)
    found |= dict(zip(todo, trained, strict=True))
    return [found[job] for job in jobs]


def _train_in_workers(data: Split, jobs: list[TrainJob], workers: int,
                      cache: ModelCache | None) -> list[tuple]:  # fmt: skip
    print(f"    training {len(jobs)} models over {workers} worker processes", flush=True)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(data, torch.get_num_threads(), cache),
    ) as pool:
        done = list(pool.map(_train_in_worker, jobs))
    out = []
    for job, (blob, info) in zip(jobs, done, strict=True):
        model = job.point.build(job.seed)
        model.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))
        out.append((model.eval(), info))
    return out


def _train_job(job: TrainJob, data: Split, cache: ModelCache | None = None) -> tuple:
    model = job.point.build(job.seed)
    print(f"    train {job.point.label}, seed {job.seed} (β = {job.beta:g})", flush=True)
    info = train(model, data, job.beta, job.psnr_db, job.epochs, job.seed)
    if cache is not None:
        cache.save(job, model.state_dict(), info)
    return model, info


# one worker process's data and cache (set by _worker_init)
_worker_state: dict = {}


def _worker_init(data: Split, threads: int, cache: ModelCache | None) -> None:
    _worker_state.update(data=data, cache=cache)
    torch.set_num_threads(threads)


def _train_in_worker(job: TrainJob) -> tuple[bytes, dict]:
    model, info = _train_job(job, _worker_state["data"], _worker_state["cache"])
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue(), info


class Runs:
    """Trains and tests points on demand; ``errors[label][seed][psnr]`` (fractions) and, for
    VDDIB-SR, ``sent[label][seed][psnr]`` (symbols sent per observation, summed over links)."""

    def __init__(self, data: Split, betas: dict[str, float], epochs: int, draws: int,
                 train_psnr: float, cache: ModelCache | None = None):  # fmt: skip
        self.data, self.betas, self.epochs, self.draws = data, betas, epochs, draws
        self.cache = cache
        self.train_psnr = train_psnr
        self.errors: dict[str, dict[int, dict[float, float]]] = {}
        self.sent: dict[str, dict[int, dict[float, float]]] = {}
        self.theorem2: dict[str, dict] = {}
        self.train_s: dict[str, list[float]] = {}
        self.models: dict[tuple[str, int], torch.nn.Module] = {}

    def add(self, point: Point, seed: int, model, train_wall_s: float) -> None:
        """Keep a trained model (from ``ensure`` or the β grid); Theorem 2 on ours, quantized,
        at the PSNR it trained at."""
        self.models[(point.label, seed)] = model
        self.train_s.setdefault(point.label, []).append(train_wall_s)
        psnr = self.trained_at(point)
        # the theorem holds for 0 < σ² < 1 (PSNR above 0 dB at peak power 1)
        if point.family == "ours" and point.bits is not None and psnr > 0:
            x = self.data.x_test[:THEOREM2_EXAMPLES]
            self.theorem2[f"{point.label}, seed {seed}"] = theorem2_row(model, x, psnr)

    def trained_at(self, point: Point) -> float:
        """The PSNR (dB) the point's models train at."""
        return self.train_psnr if point.train_psnr is None else point.train_psnr

    def beta(self, point: Point) -> float:
        """The grid's β of the point's method; other bit depths of ours take the 4-bit β,
        the VDDIB option the noise-free VDDIB's β of its bit depth."""
        for name in (point.method, Point(point.family, 4 if point.bits else None).method):
            if name in self.betas:
                return self.betas[name]
        raise KeyError(f"no β for {point.method}: the grid did not cover it")

    def job(self, point: Point, seed: int) -> TrainJob:
        """What training ``point`` at ``seed`` takes: its method's β, its PSNR, the epochs."""
        return TrainJob(point, seed, self.beta(point), self.trained_at(point), self.epochs)

    def train_missing(self, pairs, workers: int = 1) -> None:
        """Train every (point, seed) of ``pairs`` not trained yet, over ``workers`` processes."""
        todo = [(p, s) for p, s in dict.fromkeys(pairs) if (p.label, s) not in self.models]
        jobs = [self.job(p, s) for p, s in todo]
        trained = train_jobs(self.data, jobs, workers, self.cache)
        for (point, seed), (model, info) in zip(todo, trained, strict=True):
            self.add(point, seed, model, info["train_wall_s"])

    def ensure(self, point: Point, seeds, psnrs=()) -> None:
        """Train ``point`` for every seed it lacks; test it at its training PSNR and ``psnrs``."""
        psnrs = sorted({self.trained_at(point), *psnrs})
        for seed in seeds:
            key = (point.label, seed)
            if key not in self.models:
                self.train_missing([(point, seed)])
            got = self.errors.setdefault(point.label, {}).setdefault(seed, {})
            for psnr in psnrs:
                if psnr not in got:
                    means = score_point(point, self.models[key], self.data, psnr, self.draws, seed)
                    got[psnr] = means["error"]
                    if means["sent"] is not None:
                        sent = self.sent.setdefault(point.label, {}).setdefault(seed, {})
                        sent[psnr] = means["sent"]
            errors = ", ".join(f"{100 * got[p]:.2f}% at {p:g} dB" for p in psnrs)
            sent = self.sent.get(point.label, {}).get(seed)
            if sent:
                errors += " (symbols sent " + ", ".join(f"{sent[p]:.1f}" for p in psnrs) + ")"
            print(f"      {point.label}, seed {seed}: error {errors}", flush=True)

    def _at(self, table: dict, point: Point, psnr: float | None) -> list[float]:
        psnr = self.trained_at(point) if psnr is None else psnr
        return [by_psnr[psnr] for by_psnr in table.get(point.label, {}).values()
                if psnr in by_psnr]  # fmt: skip

    def values(self, point: Point, psnr: float | None = None) -> list[float]:
        """The point's test errors (fractions), one per seed tested at ``psnr`` (default: the
        PSNR it trained at)."""
        return self._at(self.errors, point, psnr)

    def sent_values(self, point: Point, psnr: float | None = None) -> list[float]:
        """VDDIB-SR's symbols sent per observation, one per seed tested (empty otherwise)."""
        return self._at(self.sent, point, psnr)

    def margin_points(self, a: Point, b: Point, psnr: float | None = None) -> float:
        """Mean error of b − mean error of a, in points."""
        return 100 * (np.mean(self.values(b, psnr)) - np.mean(self.values(a, psnr)))

    def close_pairs(self, pairs, psnrs=()) -> set[Point]:
        """The points of every pair whose margin is under CLOSE_POINTS at any PSNR tested."""
        close = set()
        for a, b in pairs:
            for psnr in (self.trained_at(a), *psnrs):
                if not self.values(a, psnr) or not self.values(b, psnr):
                    continue
                if abs(self.margin_points(a, b, psnr)) < CLOSE_POINTS:
                    close |= {a, b}
        return close
