"""The device of a multi-link model runs its own link's encoder on its own view (crops the
full image itself); without a valid link index it refuses to start."""

import numpy as np
import pytest

from device.encoder import OnnxEncoder
from shared.manifest import ManifestError


def test_a_device_sees_only_its_own_view(quick_multi_model_dir):
    right = OnnxEncoder(quick_multi_model_dir, link_index=1)
    assert (right.n_links, right.link_index, right.view.left, right.view.width) == (2, 1, 14, 14)
    x = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    changed = x.copy()
    changed[..., :14] = 9.0  # the left half: link 0's view
    same = right.encode(changed, 1e-3, 10.0).symbols
    np.testing.assert_array_equal(right.encode(x, 1e-3, 10.0).symbols, same)
    left = OnnxEncoder(quick_multi_model_dir, link_index=0)
    assert not np.array_equal(left.encode(x, 1e-3, 10.0).symbols,
                              left.encode(changed, 1e-3, 10.0).symbols)  # fmt: skip
    assert right.encode(x, 1e-3, 10.0).symbols.shape == (3, 16)


@pytest.mark.parametrize("link_index, message", [(None, "--link-index 0..1"), (2, "link index 2")])
def test_a_multi_link_device_needs_a_valid_link(quick_multi_model_dir, link_index, message):
    with pytest.raises(ManifestError, match=message):
        OnnxEncoder(quick_multi_model_dir, link_index=link_index)


def test_a_single_device_model_refuses_another_link(quick_model_dir):
    with pytest.raises(ManifestError, match="single-device"):
        OnnxEncoder(quick_model_dir, link_index=1)
