"""The model zoo: every model family in one registry, and the one way to load a model.

In the spirit of CompressAI's ``zoo`` (one mapping from an architecture's name to its class)
and torchdistill's registration decorator: a *family* is a name and a builder from the
config a checkpoint stores. The trainer builds a new model with :func:`build`, and the
trainer, the evaluator, the exporter's callers and the edge load a trained one with
:func:`load_model` from its artifact folder. Nothing else builds a model from a file.

Built-in families:

- ``"hyper-vib"``: :class:`shared.nn.model.CoInferenceModel`, one device and its decoder
  (MLP or CNN, classification or regression, with or without the QML-IB quantizer and the
  VL-VFE variable length; Hyper-VIB eq. 12-14 gates and Hyper-AJSCC eq. 11-16 SNR layers);
- ``"multi-link"``: :class:`shared.nn.multi_link.MultiLinkModel`, K devices fused at one edge
  (QML-IB eq. 3, 15-18);
- ``"image-jscc"``: :class:`shared.nn.image_jscc.ImageJSCC`, Hyper-AJSCC's image model.

A new family is one registration (docs/OWN_MODEL.md walks through one)::

    @register("linear")
    class LinearModel(nn.Module):
        def __init__(self, config: ModelConfig): ...

Its model takes a :class:`~shared.nn.model.ModelConfig` (``family="linear"``) and offers
what the trainer, the exporter and the edge call: ``forward(x, beta, snr_db)`` -> dict with
``outputs``, ``kl``, ``symbols``, ``n_active``; ``encode(x, beta, snr_db)`` -> dict with
``symbols`` and ``n_active`` (exported to ONNX for the device); ``decode(received, beta,
snr_db)`` on the edge; the edge's weights under ``decoder.``. A process that trains or serves
such a model imports the module that registers it first (``--model-module`` of
``python -m trainer`` and of the edge).

Which family a checkpoint holds: its ``family`` entry, else its config's ``family``, else
(checkpoints written before the zoo) ``"image-jscc"`` for an image decoder checkpoint and
``"multi-link"`` / ``"hyper-vib"`` by the config's ``n_links``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from shared.manifest import DECODER_NAME
from shared.nn.image_jscc import CHECKPOINT_KIND, ImageJSCC
from shared.nn.model import CoInferenceModel, ModelConfig
from shared.nn.multi_link import MultiLinkModel

CHECKPOINT_NAME = "checkpoint.pt"  # both halves, written by the trainer
DECODER_PREFIX = "decoder."  # the edge's weights in a state dict


@dataclass(frozen=True)
class Family:
    """A model family: ``build(config dict)`` -> an untrained model of it."""

    name: str
    build: Callable[[dict], nn.Module]


FAMILIES: dict[str, Family] = {}


def register(name: str, parse: Callable[[dict], object] = ModelConfig.from_dict):
    """Class decorator (or call on a factory): ``factory(parse(config dict))`` builds a model
    of family ``name``. ``parse`` turns the stored config back into what the factory takes
    (default :meth:`ModelConfig.from_dict`). Registering a taken name is a ValueError."""

    def add(factory):
        if name in FAMILIES:
            raise ValueError(f"model family {name!r} is already registered")
        FAMILIES[name] = Family(name, lambda raw: factory(parse(raw)))
        return factory

    return add


register("hyper-vib")(CoInferenceModel)
register("multi-link")(MultiLinkModel)
register("image-jscc", parse=dict)(lambda config: ImageJSCC(**config))


def import_families(modules: Iterable[str]) -> None:
    """Import each named module, so that the families it registers are known here."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"cannot import model module {module!r}: {exc}") from exc


def config_family(config: ModelConfig) -> str:
    """The family a ModelConfig builds: its ``family``, else by ``n_links``."""
    return config.family or ("multi-link" if config.n_links > 1 else "hyper-vib")


def checkpoint_family(checkpoint: dict) -> str:
    """The family a ``{"config", "state_dict"}`` checkpoint holds (see the module doc)."""
    if checkpoint.get("family"):
        return str(checkpoint["family"])
    if checkpoint.get("kind") == CHECKPOINT_KIND:
        return "image-jscc"
    config = checkpoint.get("config") or {}
    if config.get("family"):
        return str(config["family"])
    return "multi-link" if int(config.get("n_links", 1)) > 1 else "hyper-vib"


def family(name: str) -> Family:
    """The registered family ``name``; a ValueError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(
            f"unknown model family {name!r} (known: {', '.join(sorted(FAMILIES))}): import "
            "the module that registers it first (--model-module on the trainer and the edge)"
        )
    return FAMILIES[name]


def build(config: ModelConfig) -> nn.Module:
    """An untrained model for ``config`` (the trainer's start)."""
    return family(config_family(config)).build(config.to_dict())


def checkpoint_path(path: str | Path, decoder_only: bool) -> Path:
    """An artifact folder's checkpoint.pt (decoder.pt with ``decoder_only``), or ``path``
    itself when it is a file."""
    path = Path(path)
    if path.is_dir():
        return path / (DECODER_NAME if decoder_only else CHECKPOINT_NAME)
    return path


def load_model(path: str | Path, decoder_only: bool = False, map_location="cpu") -> nn.Module:
    """The trained model of an artifact folder (or of one checkpoint file), in eval mode.

    ``decoder_only`` reads decoder.pt, the edge's half: the decoder's weights, the encoder
    left untrained. Raises FileNotFoundError when the file is missing and ValueError when
    the family is unknown or the weights do not fit the model."""
    path = checkpoint_path(path, decoder_only)
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: run python -m trainer train")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a model checkpoint ({{'config', 'state_dict'}})")
    model = family(checkpoint_family(checkpoint)).build(checkpoint["config"])
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    needed = [k for k in missing if k.startswith(DECODER_PREFIX) or not decoder_only]
    if needed or unexpected:
        raise ValueError(f"{path}: weights do not match the model: missing {needed[:3]}, "
                         f"unexpected {unexpected[:3]}")  # fmt: skip
    return model.eval()
