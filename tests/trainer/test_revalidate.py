"""``python -m trainer revalidate``: carrying runs over a model-code change their quick run
shows moves nothing (trainer/experiments/revalidate.py)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from shared.provenance import REPO
from trainer.experiments.carry_over import carried_commit
from trainer.experiments.revalidate import comparable, differences, revalidate


def test_comparable_leaves_out_times_and_provenance_and_a_moved_figure_shows():
    run = {
        "experiment": "x",
        "finished_at": "2026-01-01T00:00:00+00:00",
        "total_wall_s": 61.0,
        "code": {"commit": "a" * 40, "dirty": False},
        "machine": {"cpu_cores": 2},
        "checks": [{"figure": "ratio", "value": 4.8}],
        "sweep": {"betas": [1e-5, 1.0], "values": [0.89, 0.71], "kl_nats": [54.1, math.nan],
                  "train_wall_s": [10.0, 9.0], "train_cpu_s": 9.5,
                  "wall_ratio_grid_over_hyper": 4.8, "cpu_ratio_grid_over_hyper": 4.7},
        "entropy_coding_us_per_image": 81.0,
    }  # fmt: skip
    flat = comparable(run)
    nan = flat.pop("/sweep/kl_nats[1]")
    assert flat == {"/experiment": "x", "/sweep/betas[0]": 1e-5, "/sweep/betas[1]": 1.0,
                    "/sweep/values[0]": 0.89, "/sweep/values[1]": 0.71,
                    "/sweep/kl_nats[0]": 54.1}  # fmt: skip
    assert math.isnan(nan)
    rerun = json.loads(json.dumps(run))  # another run of the same code: other times, machine
    rerun.update(total_wall_s=75.0, finished_at="2026-01-02T00:00:00+00:00", machine={})
    rerun["sweep"].update(train_wall_s=[12.0, 8.0], wall_ratio_grid_over_hyper=4.1)
    assert differences(run, rerun) == []  # NaN against NaN is no difference
    rerun["sweep"]["values"][1] = 0.7101
    rerun["sweep"]["extra"] = 1
    assert differences(run, rerun) == [
        "/sweep/extra: only after", "/sweep/values[1]: 0.71 -> 0.7101"]  # fmt: skip


def test_a_config_field_added_at_its_default_is_no_difference():
    """A model config field added since the older run (beta_gate_scale) is recorded only by
    the newer one: at its default (1.0) the older run used the same value; at another value,
    or as a figure outside a config, it is a difference."""
    run = {"sweep": {"hyper": {"info": {"config": {"model": {"d": 64}}}}, "values": [0.89]}}
    rerun = json.loads(json.dumps(run))
    rerun["sweep"]["hyper"]["info"]["config"]["model"]["beta_gate_scale"] = 1.0
    assert differences(run, rerun) == []
    rerun["sweep"]["hyper"]["info"]["config"]["model"]["beta_gate_scale"] = 10.0
    assert differences(run, rerun) == [
        "/sweep/hyper/info/config/model/beta_gate_scale: only after"]  # fmt: skip
    rerun["sweep"]["hyper"]["info"]["config"]["model"]["beta_gate_scale"] = 1.0
    rerun["sweep"]["beta_gate_scale"] = 1.0  # not under a config: a new figure
    assert differences(run, rerun) == ["/sweep/beta_gate_scale: only after"]
    # a model field recorded among the run's fields is judged by the run config's defaults
    rerun = json.loads(json.dumps(run))
    rerun["sweep"]["hyper"]["info"]["config"]["task"] = "classification"  # the model's default
    assert differences(run, rerun) == ["/sweep/hyper/info/config/task: only after"]
    rerun["sweep"]["hyper"]["info"]["config"]["task"] = "fashion-mnist"  # the run's default
    assert differences(run, rerun) == []


def test_carried_commit_follows_the_records_and_stops_on_a_loop():
    records = [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "x", "to": "y"}]
    assert carried_commit("a", records) == "c"
    assert carried_commit("b", records) == "c"
    assert carried_commit("z", records) == "z"
    assert carried_commit("a", []) == "a"
    assert carried_commit("p", [{"from": "p", "to": "q"}, {"from": "q", "to": "p"}]) == "q"


def _git(repo: Path, *argv: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def clone(tmp_path):
    """A clone of this repository's HEAD (its history, so its commits resolve)."""
    if _git(REPO, "rev-parse", "--is-shallow-repository") == "true":
        pytest.skip("a shallow clone")
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(REPO), str(target)], check=True)
    return target


# the smallest quick run there is (about 8 s): quantizer-bits on 2,000 images, one epoch
SMALL = ("--epochs", "1", "--train-subset", "2000", "--n-eval", "500", "--draws", "1")


def test_revalidate_carries_over_a_change_that_moves_nothing_and_not_one_that_does(clone, tmp_path):
    """quantizer-bits never builds a variable-length model: a function added to
    shared/nn/variable_length.py leaves its quick run identical, so its runs are carried over;
    a change to its own module is refused without running; one to the channel's noise
    (shared/nn/channel.py, 1 dB more) shows in the quick run, and nothing is recorded."""
    name, reports = "quantizer-bits", tmp_path / "reports"
    repeat = _git(clone, "rev-parse", "HEAD")  # a seed repeat's commit
    (reports / name / "seed-1").mkdir(parents=True)
    seed_run = {"code": {"commit": repeat}, "settings": {"seed": 1}}
    (reports / name / "seed-1" / "results.json").write_text(json.dumps(seed_run))
    with (clone / "README.md").open("a") as f:
        f.write("\n")
    base = _commit(clone, "no code")  # the full run's
    (reports / name / "results.json").write_text(json.dumps({"code": {"commit": base}}))
    assert revalidate(name, reports, repo=clone, extra=SMALL)["status"] == "current"

    with (clone / "shared/nn/variable_length.py").open("a") as f:
        f.write("\n\ndef unused_by_quantizer_bits():\n    return 1\n")
    head = _commit(clone, "a variable-length helper")
    done = revalidate(name, reports, repo=clone, extra=SMALL)
    assert done["status"] == "recorded", done["detail"]
    records = done["records"]  # one for the full run's commit, one for the repeat's
    assert [(r["from"], r["to"]) for r in records] == [(base, head), (repeat, head)]
    assert all(r["changed"] == ["shared/nn/variable_length.py"] for r in records)
    assert all(r["values_compared"] > 20 for r in records)
    stored = json.loads((reports / name / "revalidated.json").read_text())
    assert stored["records"] == records
    quick = json.loads((reports / f"{name}-quick" / "results.json").read_text())
    assert quick["code"]["commit"] == head and quick["mode"] == "quick"
    assert revalidate(name, reports, repo=clone, extra=SMALL)["status"] == "current"

    with (clone / "trainer/experiments/quantizer_bits.py").open("a") as f:
        f.write("\nMARGIN = float(1)\n")  # calls something: counts wherever it is used
    _commit(clone, "experiment code")
    refused = revalidate(name, reports, repo=clone, extra=SMALL)
    assert refused["status"] == "refused"
    assert refused["detail"] == ["not model code: trainer/experiments/quantizer_bits.py"]
    _git(clone, "reset", "-q", "--hard", "HEAD~1")

    with (clone / "shared/nn/channel.py").open("a") as f:
        f.write("\n\n_noise_var = noise_var_from_snr\n\n\ndef noise_var_from_snr(psnr_db):\n")
        f.write("    return _noise_var(psnr_db - 1.0)\n")
    _commit(clone, "1 dB more noise")
    moved = revalidate(name, reports, repo=clone, extra=SMALL)
    assert moved["status"] == "differs" and moved["records"] == []
    assert any("accuracy" in line for line in moved["detail"]), moved["detail"][:5]
    assert json.loads((reports / name / "revalidated.json").read_text()) == stored
