"""QML-IB models trained over worker processes (trainer.qml_runs.train_jobs, the multi-device
experiment's ``--workers``) come out bit for bit the models one process trains; a model kept
on disk (ModelCache) is reused only for the same job and the same code."""

from __future__ import annotations

from dataclasses import replace

import torch

from shared.provenance import code_digest
from trainer.experiments.multi_device import training_code
from trainer.qml_runs import ModelCache, Point, Runs, TrainJob, train_jobs
from trainer.qml_train import Split


def _tiny_split(n: int = 192) -> Split:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    return Split(x, y, x[:64], y[:64], x[:64], y[:64])


JOBS = [
    TrainJob(Point("ours", 4, total=16), seed=0, beta=1e-3, psnr_db=10.0, epochs=1),
    TrainJob(Point("vddib-sr", 4, total=16), seed=1, beta=1e-4, psnr_db=10.0, epochs=1),
    TrainJob(Point("ours", None, total=16, overlap=5), seed=2, beta=1e-5, psnr_db=5.0, epochs=1),
]


def test_models_trained_in_workers_equal_those_trained_here():
    data = _tiny_split()
    here = train_jobs(data, JOBS, workers=1)
    there = train_jobs(data, JOBS, workers=2)
    assert len(there) == len(JOBS)
    for job, (a, _), (b, info) in zip(JOBS, here, there, strict=True):
        assert type(a) is type(b), job
        assert not b.training  # handed back ready for the inference path
        assert info["train_wall_s"] > 0
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), job.point.label
    # the jobs differ, so equal weights above are not one model three times
    first, second = here[0][0].state_dict(), here[2][0].state_dict()
    key = next(k for k in first if k.startswith("devices.0"))
    assert first[key].shape != second[key].shape or not torch.equal(first[key], second[key])


def test_runs_train_only_the_missing_pairs_and_keep_each_under_its_label():
    data = _tiny_split()
    runs = Runs(data, {"ours 4 bits": 1e-3}, epochs=1, draws=1, train_psnr=10.0)
    a, b = Point("ours", 4, total=16), Point("ours", 4, total=32)
    runs.train_missing([(a, 0)])
    kept = runs.models[(a.label, 0)]
    runs.train_missing([(a, 0), (b, 0), (b, 1), (b, 0)], workers=2)
    assert runs.models[(a.label, 0)] is kept  # not trained again
    assert set(runs.models) == {(a.label, 0), (b.label, 0), (b.label, 1)}
    assert len(runs.train_s[b.label]) == 2  # the repeated pair trained once
    runs.ensure(b, [0, 1])  # tests the models the workers trained; trains nothing new
    assert len(runs.models) == 3
    assert set(runs.errors[b.label]) == {0, 1}


def test_a_cached_model_is_reused_only_for_the_same_job_and_code(tmp_path):
    data = _tiny_split()
    cache = ModelCache(tmp_path, version="commit-a")
    first = train_jobs(data, JOBS[:2], workers=2, cache=cache)  # saved by the workers
    assert len(list(tmp_path.glob("*.pt"))) == 2 and not list(tmp_path.glob("*.part"))
    again = train_jobs(data, JOBS[:2], cache=cache)
    for (a, info_a), (b, info_b) in zip(first, again, strict=True):
        assert info_b == info_a  # the stored training record: nothing was trained again
        assert all(
            torch.equal(x, y)
            for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        )
        assert not b.training
    other_code = train_jobs(data, JOBS[:1], cache=ModelCache(tmp_path, version="commit-b"))
    longer = replace(JOBS[0], epochs=2)
    other_job = train_jobs(data, [longer], cache=cache)
    assert other_code[0][1]["train_wall_s"] != first[0][1]["train_wall_s"]  # trained anew
    assert other_job[0][1]["train_wall_s"] != first[0][1]["train_wall_s"]
    off = ModelCache(tmp_path / "off", version=None)  # cache off: nothing kept
    train_jobs(data, JOBS[:1], cache=off)
    assert not (tmp_path / "off").exists()


def test_the_code_digest_follows_file_contents_not_caches(tmp_path):
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "model.py").write_text("WIDTH = 1\n")
    (tmp_path / "one.py").write_text("x = 1\n")
    paths = ["pkg", "one.py"]
    first = code_digest(paths, tmp_path)
    (tmp_path / "pkg" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0\1")
    assert code_digest(paths, tmp_path) == first  # byte code does not count
    (tmp_path / "pkg" / "model.py").write_text("WIDTH = 2\n")
    changed = code_digest(paths, tmp_path)
    assert changed != first
    (tmp_path / "pkg" / "model.py").write_text("WIDTH = 1\n")
    assert code_digest(paths, tmp_path) == first  # the same contents, the same digest
    (tmp_path / "pkg" / "extra.py").write_text("")
    assert code_digest(paths, tmp_path) != first  # a new file, even empty, counts
    # a file's name is part of the digest: the same bytes moved to another name differ
    (tmp_path / "pkg" / "extra.py").unlink()
    (tmp_path / "pkg" / "model.py").rename(tmp_path / "pkg" / "moved.py")
    assert code_digest(paths, tmp_path) != first


def test_multi_device_models_are_keyed_on_the_training_code_only():
    code = training_code()
    for needed in ("shared/nn", "trainer/qml_train.py", "trainer/qml_runs.py",
                   "trainer/vddib_sr.py", "trainer/experiments/common.py"):  # fmt: skip
        assert needed in code
    # what the experiment measures, reports and plots does not retrain its models
    assert not [p for p in code if p.startswith("trainer/experiments/multi_device")]
    assert "trainer/vddib_sr_phases.py" not in code  # an option the experiment trains itself
