"""The multi-link model (QML-IB eq. 15/18): K = 1 is the single-device model, missing links
are zeros, the loss sums the links' rates, link drop-out never silences every link."""

import pytest
import torch

from shared.nn.losses import beta_weight, distortion, vib_loss
from shared.nn.model import CoInferenceModel, ModelConfig
from shared.nn.multi_link import MultiLinkModel
from shared.nn.zoo import build

SMALL = {"d": 8, "hidden": 32}


def _inputs(n=6, k=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=gen)
    beta = torch.exp(torch.empty(n, k).uniform_(-9, 0, generator=gen))
    snr = torch.empty(n, k).uniform_(0, 25, generator=gen)
    return x, beta, snr


@pytest.mark.parametrize("bits", [None, 4])
def test_one_link_reproduces_the_single_device_model(bits):
    torch.manual_seed(0)
    single = CoInferenceModel(ModelConfig(bits=bits, **SMALL)).train()
    multi = MultiLinkModel.from_single(single)
    x, beta, snr = _inputs()
    torch.manual_seed(1)  # same noise draws (z sampling and AWGN) in the same order
    ref = single(x, beta, snr)
    torch.manual_seed(1)
    out = multi(x, beta, snr)
    torch.testing.assert_close(out["outputs"], ref["outputs"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out["kl"][:, 0], ref["kl"])
    y = torch.arange(6) % 10
    losses = [
        vib_loss(distortion(o["outputs"], y, "classification"), o["kl"], beta,
                 beta_weight(beta, 8, "inverse-d-beta"))
        for o in (ref, out)
    ]  # fmt: skip
    torch.testing.assert_close(losses[0], losses[1])


def test_build_model_picks_the_class_by_link_count():
    assert type(build(ModelConfig(**SMALL))) is CoInferenceModel
    assert type(build(ModelConfig(n_links=2, **SMALL))) is MultiLinkModel


def test_each_link_encodes_its_own_view():
    model = MultiLinkModel(ModelConfig(n_links=4, **SMALL)).eval()
    assert [link.config.input_shape for link in model.links] == [(1, 14, 14)] * 4
    x, beta, snr = _inputs(k=4)
    sent = model.encode(x, beta, snr)
    x2 = x.clone()
    x2[:, :, 14:, 14:] += 5.0  # change only the bottom-right quadrant (link 3's view)
    sent2 = model.encode(x2, beta, snr)
    for k in range(3):
        torch.testing.assert_close(sent[k]["symbols"], sent2[k]["symbols"])
    assert not torch.allclose(sent[3]["symbols"], sent2[3]["symbols"])


def test_a_missing_links_features_do_not_reach_the_decision():
    model = MultiLinkModel(ModelConfig(n_links=2, bits=2, **SMALL)).eval()
    _, beta, snr = _inputs(k=2)
    received = torch.rand(6, 2, 8)
    present = torch.tensor([[1.0, 0.0]]).expand(6, 2)
    garbled = received.clone()
    garbled[:, 1] = 7.0
    zeroed = received.clone()
    zeroed[:, 1] = 0.0
    out = model.decode(received, beta, snr, present)
    torch.testing.assert_close(out, model.decode(garbled, beta, snr, present))
    torch.testing.assert_close(out, model.decode(zeroed, beta, snr, present))
    assert not torch.allclose(out, model.decode(received, beta, snr))  # link 1 matters


def test_loss_is_task_loss_plus_sum_of_link_rates():
    dist = torch.tensor([1.0, 2.0])
    kl = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    beta = torch.tensor([[0.1, 0.01], [0.001, 1.0]])
    # eq. (18): mean_n [dist_n + Σ_k β_nk KL_nk]
    expected = ((1.0 + 1.0 + 0.2) + (2.0 + 0.03 + 40.0)) / 2
    assert vib_loss(dist, kl, beta).item() == pytest.approx(expected)
    assert beta_weight(beta, 4, "inverse-d-beta").tolist() == pytest.approx(
        [1 / (1 + 4 * 0.11), 1 / (1 + 4 * 1.001)]
    )


def test_link_dropout_drops_links_but_never_all():
    model = MultiLinkModel(ModelConfig(n_links=4, link_dropout=0.6, **SMALL))
    present = model.drop_mask(4000, torch.Generator().manual_seed(0))
    assert present.sum(dim=1).min() >= 1
    dropped = 1.0 - present.mean().item()
    assert 0.5 < dropped < 0.6  # p = 0.6, less the rescued all-dropped rows (0.6^4 ≈ 13%)
    assert MultiLinkModel(ModelConfig(n_links=2, **SMALL)).drop_mask(5).eq(1.0).all()
