"""The device's web page (``GET /``, static files under ``device/static/``) and the random
Fashion-MNIST test image endpoint the page uses (``GET /v1/samples/random``).

Plain HTML/CSS/JS, no CDN and no build step; the page talks only to the device's own API
(``/v1/infer``, ``/v1/knobs``, ``/v1/channel``, ``/v1/channel/psnr``, ``/v1/model``).
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image

from shared.idx import DEFAULT_DATA_DIR, FASHION_MNIST_CLASSES, load_test_set

STATIC_DIR = Path(__file__).resolve().parent / "static"


class TestSet:
    """The Fashion-MNIST test set, read once on first use (thread-safe)."""

    def __init__(self, data_dir: Path | None):
        self.data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
        self._lock = threading.Lock()
        self._data: tuple[np.ndarray, np.ndarray] | None = None
        self._rng = np.random.default_rng()

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._data is None:
                self._data = load_test_set(self.data_dir)
            return self._data

    def sample(self, index: int | None = None) -> tuple[int, np.ndarray, int]:
        images, labels = self.load()
        if index is None:
            with self._lock:
                index = int(self._rng.integers(len(images)))
        if not 0 <= index < len(images):
            raise IndexError(f"index must be in [0, {len(images)}), got {index}")
        return index, images[index], int(labels[index])


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def add_web_routes(app: FastAPI, data_dir: Path | None, class_names=()) -> None:
    """Mount the page at ``/`` and ``/static``, and add ``GET /v1/samples/random``."""
    test_set = TestSet(data_dir)
    names = tuple(class_names) or FASHION_MNIST_CLASSES

    @app.get("/", include_in_schema=False)
    async def index_page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get(
        "/v1/samples/random",
        summary="A Fashion-MNIST test image (PNG) and its label",
        responses={404: {"description": "test set not found in the data dir"}},
    )
    def random_sample(
        index: int | None = Query(None, description="test-set index; random when omitted"),
        format: str = Query("json", pattern="^(json|png)$", description="json or png"),
    ) -> Any:
        try:
            i, pixels, label = test_set.sample(index)
        except FileNotFoundError as exc:
            return JSONResponse(
                {"detail": f"no Fashion-MNIST test set in {test_set.data_dir}: {exc}"},
                status_code=404,
            )
        except IndexError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        png = _png(pixels)
        name = names[label] if label < len(names) else str(label)
        if format == "png":
            headers = {"X-Label": str(label), "X-Index": str(i)}
            return Response(png, media_type="image/png", headers=headers)
        return {
            "index": i,
            "label": label,
            "class_name": name,
            "png_base64": base64.b64encode(png).decode("ascii"),
        }

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
