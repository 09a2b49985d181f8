"""The model zoo (shared/nn/zoo.py): one registry, one loader for every family."""

from __future__ import annotations

import pytest
import torch

from shared.nn.image_jscc import ImageJSCC, save_image_decoder
from shared.nn.model import CoInferenceModel, ModelConfig
from shared.nn.multi_link import MultiLinkModel
from shared.nn.zoo import FAMILIES, build, checkpoint_family, load_model, register

SMALL = {"d": 8, "hidden": 16, "input_shape": (1, 8, 8)}


def save(model, path, decoder_only=False):
    state = model.state_dict()
    if decoder_only:
        state = {k: v for k, v in state.items() if k.startswith("decoder.")}
    torch.save({"config": model.config.to_dict(), "state_dict": state}, path)


@pytest.mark.parametrize(
    ("config", "cls"),
    [(ModelConfig(**SMALL), CoInferenceModel),
     (ModelConfig(bits=2, **SMALL), CoInferenceModel),
     (ModelConfig(n_links=2, **SMALL), MultiLinkModel)],
)  # fmt: skip
def test_a_saved_model_loads_back_with_its_weights(tmp_path, config, cls):
    torch.manual_seed(0)
    model = build(config)
    assert type(model) is cls
    save(model, tmp_path / "checkpoint.pt")
    loaded = load_model(tmp_path)  # the folder's checkpoint.pt
    assert type(loaded) is cls and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_the_decoder_half_loads_from_decoder_pt(tmp_path):
    torch.manual_seed(0)
    model = build(ModelConfig(**SMALL)).eval()
    save(model, tmp_path / "decoder.pt", decoder_only=True)
    edge = load_model(tmp_path, decoder_only=True)
    received, beta, snr = torch.randn(4, 8), torch.full((4, 1), 1e-3), torch.full((4, 1), 9.0)
    with torch.no_grad():
        assert torch.equal(edge.decode(received, beta, snr), model.decode(received, beta, snr))
    with pytest.raises(ValueError, match="missing"):  # decoder.pt lacks the encoder
        load_model(tmp_path / "decoder.pt")


def test_the_image_decoder_checkpoint_is_found_by_its_kind(tmp_path):
    torch.manual_seed(0)
    model = ImageJSCC(filters=4, channels=2).eval()
    save_image_decoder(model, tmp_path / "decoder.pt")
    edge = load_model(tmp_path, decoder_only=True)
    assert type(edge) is ImageJSCC
    received, snr = torch.randn(2, model.symbols), torch.full((2, 1), 5.0)
    with torch.no_grad():
        assert torch.equal(edge.decode(received, None, snr), model.decoder(received, snr))


def test_which_family_a_checkpoint_holds():
    assert checkpoint_family({"config": {"n_links": 1}}) == "hyper-vib"
    assert checkpoint_family({"config": {"n_links": 3}}) == "multi-link"
    assert checkpoint_family({"kind": "image_jscc", "config": {}}) == "image-jscc"
    assert checkpoint_family({"config": {"family": "mine", "n_links": 3}}) == "mine"


def test_a_new_family_is_one_registration(tmp_path):
    @register("zoo-test-linear")
    class Linear(torch.nn.Module):
        def __init__(self, config: ModelConfig):
            super().__init__()
            self.config = config
            self.decoder = torch.nn.Linear(config.d, config.n_outputs)

    try:
        model = build(ModelConfig(family="zoo-test-linear", **SMALL))
        assert type(model) is Linear
        save(model, tmp_path / "checkpoint.pt")
        assert type(load_model(tmp_path)) is Linear
        with pytest.raises(ValueError, match="already registered"):
            register("zoo-test-linear")(Linear)
    finally:
        FAMILIES.pop("zoo-test-linear")


def test_bad_input_gets_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        load_model(tmp_path)
    save(build(ModelConfig(**SMALL)), tmp_path / "checkpoint.pt")
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    raw["config"]["family"] = "nobody-registered-this"
    torch.save(raw, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="unknown model family 'nobody-registered-this'"):
        load_model(tmp_path)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a model checkpoint"):
        load_model(tmp_path / "other.pt")


def test_a_model_with_scaled_beta_gates_loads_back_as_the_same_function(tmp_path):
    """The checkpoint holds u', v'; the gate scale comes back from the config (without it the
    reloaded gates would be sigmoid(0.4) where they were sigmoid(4))."""
    torch.manual_seed(0)
    model = build(ModelConfig(beta_gate_scale=10.0, **SMALL)).eval()
    save(model, tmp_path / "checkpoint.pt")
    loaded = load_model(tmp_path)
    assert loaded.config.beta_gate_scale == 10.0
    x, beta, snr = torch.rand(3, 1, 8, 8), torch.full((3, 1), 1e-3), torch.full((3, 1), 10.0)
    torch.testing.assert_close(loaded.encode(x, beta, snr), model.encode(x, beta, snr))
