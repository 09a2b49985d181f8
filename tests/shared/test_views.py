"""Device views (QML-IB §V): K equal sub-images, optional overlap."""

import numpy as np
import pytest

from shared.views import View, make_views, view_input_shape


def test_two_views_are_the_left_and_right_halves():
    assert make_views(28, 28, 2) == [View(0, 0, 28, 14), View(0, 14, 28, 14)]


def test_four_views_are_the_quadrants_and_tile_the_image():
    views = make_views(28, 28, 4)
    assert [(v.top, v.left) for v in views] == [(0, 0), (0, 14), (14, 0), (14, 14)]
    image = np.arange(28 * 28).reshape(1, 28, 28)
    seen = np.concatenate([v.crop(image).ravel() for v in views])
    assert sorted(seen.tolist()) == list(range(28 * 28))  # each pixel exactly once


def test_overlap_widens_equal_views_inside_the_image():
    left, right = make_views(28, 28, 2, overlap=4)
    assert (left.left, left.width, right.left, right.width) == (0, 18, 10, 18)
    assert view_input_shape((1, 28, 28), 2, overlap=4) == (1, 28, 18)
    assert view_input_shape((1, 28, 28), 1) == (1, 28, 28)


@pytest.mark.parametrize("k, overlap", [(3, 0), (2, -1), (2, 15)])
def test_bad_link_count_or_overlap_is_refused(k, overlap):
    with pytest.raises(ValueError):
        make_views(28, 28, k, overlap)
