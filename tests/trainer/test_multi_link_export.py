"""Multi-link export: one encoder ONNX per view that ONNX Runtime runs like PyTorch, the
fusion decoder for the edge, and a manifest naming K, the views and each link's ranges."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from shared.manifest import load_manifest
from shared.nn.multi_link import MultiLinkModel
from shared.nn.zoo import load_model
from trainer.data import load_dataset


@pytest.fixture(scope="module")
def exported(quick_multi_model_dir):
    model = load_model(quick_multi_model_dir / "checkpoint.pt")
    return quick_multi_model_dir, model, load_manifest(quick_multi_model_dir)


def test_manifest_names_k_the_views_and_the_link_ranges(exported):
    model_dir, model, manifest = exported
    assert isinstance(model, MultiLinkModel) and manifest.n_links == 2
    assert manifest.input_shape == (1, 28, 28) and manifest.d == 16
    assert [manifest.view(k).to_dict() for k in range(2)] == [
        {"top": 0, "left": 0, "height": 28, "width": 14},
        {"top": 0, "left": 14, "height": 28, "width": 14},
    ]
    for k in range(2):
        link = manifest.link(k)
        assert (model_dir / link["encoder"]).is_file()
        assert link["input_shape"] == [1, 28, 14]
        assert link["beta_range"] == [1e-4, 1e-1] and link["snr_db_range"] == [0.0, 25.0]
        assert len(link["quantizer"]["levels"]) == 16
    with pytest.raises(ValueError, match="link index 2"):
        manifest.link(2)


def test_each_link_onnx_encoder_matches_pytorch_on_its_view(exported):
    model_dir, model, manifest = exported
    data = load_dataset("fashion-mnist")
    x = data.x_test[:500]
    n = len(x)
    beta, snr = np.full((n, 1), 1e-3, np.float32), np.full((n, 1), 12.0, np.float32)
    for k, link in enumerate(model.links):
        session = ort.InferenceSession(str(model_dir / manifest.link(k)["encoder"]))
        view = manifest.view(k).crop(x)
        onnx_out = dict(zip([o.name for o in session.get_outputs()],
                            session.run(None, {"x": view, "beta": beta, "snr_db": snr}),
                            strict=True))  # fmt: skip
        ref = link.encode(torch.from_numpy(view), torch.from_numpy(beta), torch.from_numpy(snr))
        agree = (onnx_out["levels"] == ref["levels"].numpy()).mean()
        assert agree >= 0.999, (k, agree)
        np.testing.assert_allclose(onnx_out["symbols"], ref["symbols"].numpy(), atol=1e-5)


def test_edge_decoder_loads_alone_and_decides_well(exported):
    model_dir, model, _ = exported
    edge = load_model(model_dir / "decoder.pt", decoder_only=True)
    assert isinstance(edge, MultiLinkModel)
    data = load_dataset("fashion-mnist")
    x = torch.from_numpy(data.x_test[:1000])
    n = len(x)
    beta, snr = torch.full((n, 2), 1e-3), torch.full((n, 2), 20.0)
    received = torch.stack([s["symbols"] for s in model.encode(x, beta, snr)], dim=1)
    both = edge.decode(received, beta, snr).argmax(1).numpy()
    one = edge.decode(received, beta, snr, torch.tensor([[1.0, 0.0]]).expand(n, 2))
    accuracy = (both == data.y_test[:1000]).mean()
    one_accuracy = (one.argmax(1).numpy() == data.y_test[:1000]).mean()
    assert accuracy > 0.75  # a 2-epoch quick model; chance is 0.1
    assert 0.3 < one_accuracy < accuracy  # half the image still decides, worse
