"""The edge's one decoder runtime (edge_server/decoder.py) and how it learns a family."""

from __future__ import annotations

import numpy as np
import pytest

from edge_server.settings import parse_settings
from shared.manifest import ManifestError
from shared.nn.zoo import import_families


def test_model_modules_come_from_the_flag_or_the_environment():
    assert parse_settings(["--model-module", "a.b, c"]).model_modules() == ["a.b", "c"]
    assert parse_settings([], env={"EDGE_MODEL_MODULE": "x.y"}).model_modules() == ["x.y"]
    assert parse_settings([], env={}).model_modules() == []


def test_an_unimportable_model_module_is_named():
    with pytest.raises(ValueError, match="cannot import model module 'no_such_module_here'"):
        import_families(["no_such_module_here"])


def test_the_runtime_refuses_a_folder_without_weights(tmp_path, quick_model_dir):
    from edge_server.decoder import DecoderRuntime

    (tmp_path / "manifest.json").write_bytes((quick_model_dir / "manifest.json").read_bytes())
    with pytest.raises(ManifestError, match="no decoder.pt"):
        DecoderRuntime(tmp_path, device="cpu")


def test_a_k_link_call_without_present_counts_every_link(quick_multi_model_dir):
    from edge_server.decoder import DecoderRuntime

    decoder = DecoderRuntime(quick_multi_model_dir, device="cpu")
    k, d = decoder.n_links, decoder.d
    received = np.random.default_rng(0).normal(size=(3, k, d)).astype(np.float32)
    beta, snr = np.full((3, k), 1e-3), np.full((3, k), 10.0)
    everyone = decoder(received, beta, snr, np.ones((3, k)))
    np.testing.assert_array_equal(decoder(received, beta, snr), everyone)
    with pytest.raises(ValueError, match=rf"received must be \[N, {k}, {d}\]"):
        decoder(received[:, 0], beta, snr)


@pytest.mark.parametrize("model", ["quick_model_dir", "quick_multi_model_dir"])
def test_a_traced_decoder_gives_the_eager_outputs(model, request):
    """``trace=True``: the frozen TorchScript trace answers as the eager model does, at batch
    sizes other than the example's, each row its own β and SNR."""
    from edge_server.decoder import DecoderRuntime

    model_dir = request.getfixturevalue(model)
    eager = DecoderRuntime(model_dir, device="cpu")
    traced = DecoderRuntime(model_dir, device="cpu", trace=True)
    assert (eager.traced, traced.traced) == (False, True)
    k, d, rng = eager.n_links, eager.d, np.random.default_rng(0)
    for n in (1, 7):
        shape = (n, k) if k > 1 else (n,)
        received = rng.normal(size=(*shape, d)).astype(np.float32)
        beta = np.exp(rng.uniform(np.log(1e-4), 0.0, size=shape))
        snr_db = rng.uniform(0.0, 20.0, size=shape)
        np.testing.assert_allclose(traced(received, beta, snr_db), eager(received, beta, snr_db),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip


def test_a_decoder_that_cannot_be_traced_stays_eager(quick_model_dir, monkeypatch, caplog):
    import torch

    from edge_server.decoder import DecoderRuntime

    def refuse(*args, **kwargs):
        raise RuntimeError("data-dependent control flow")

    monkeypatch.setattr(torch.jit, "trace_module", refuse)
    decoder = DecoderRuntime(quick_model_dir, device="cpu", trace=True)
    assert decoder.traced is False and "decoding eagerly" in caplog.text
    assert decoder(np.zeros((2, decoder.d), np.float32), [1e-3] * 2, [10.0] * 2).shape[0] == 2
    assert parse_settings(["--decoder-trace", "true"], env={}).decoder_trace is True
    assert parse_settings([], env={}).decoder_trace is False
