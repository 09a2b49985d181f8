"""Device views of one scene, QML-IB §V: K equal sub-images of the input (after its ref. [31]).

K = 1 is the whole image, K = 2 the left and right halves, K = 4 the quadrants (a rows x cols
grid). ``overlap`` widens every view by that many pixels along each split axis, keeping the
views equal in size and inside the image (the appendix's overlap study): with K = 2 and
overlap 4 on a 28-pixel width, the views are columns [0, 18) and [10, 28).
Torch-free: the device crops its own view from the full image with :meth:`View.crop`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GRIDS = {1: (1, 1), 2: (1, 2), 4: (2, 2)}  # K -> (rows, cols)


@dataclass(frozen=True)
class View:
    """One device's window on the image, in pixels: rows [top, top+height), cols [left, ...)."""

    top: int
    left: int
    height: int
    width: int

    def crop(self, image):
        """The view of ``image`` [..., H, W] (a NumPy array or a torch tensor)."""
        return image[..., self.top : self.top + self.height, self.left : self.left + self.width]

    def to_dict(self) -> dict:
        return asdict(self)


def _starts(size: int, parts: int, overlap: int) -> tuple[list[int], int]:
    if size % parts:
        raise ValueError(f"{size} pixels do not split into {parts} equal views")
    if parts == 1:
        return [0], size
    length = size // parts + overlap
    if overlap < 0 or length > size:
        raise ValueError(f"overlap must be in [0, {size - size // parts}], got {overlap}")
    step = (size - length) / (parts - 1)
    return [round(j * step) for j in range(parts)], length


def make_views(height: int, width: int, n_links: int, overlap: int = 0) -> list[View]:
    """The K views of an H x W image, row-major (link k sees views[k])."""
    if n_links not in GRIDS:
        raise ValueError(f"n_links must be one of {tuple(GRIDS)}, got {n_links}")
    rows, cols = GRIDS[n_links]
    tops, view_h = _starts(height, rows, overlap)
    lefts, view_w = _starts(width, cols, overlap)
    return [View(top, left, view_h, view_w) for top in tops for left in lefts]


def view_input_shape(input_shape, n_links: int, overlap: int = 0) -> tuple[int, ...]:
    """(C, h, w) of one view of a (C, H, W) input."""
    channels, height, width = input_shape
    view = make_views(height, width, n_links, overlap)[0]
    return (channels, view.height, view.width)
