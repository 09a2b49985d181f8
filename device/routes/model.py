"""``GET /v1/model``: the model this device runs (from its manifest)."""

from __future__ import annotations

from fastapi import APIRouter

from device.routes.deps import Service

router = APIRouter()


@router.get("/v1/model", summary="The model this device runs")
async def get_model(service: Service):
    manifest, encoder = service.manifest, service.encoder
    return {
        "model_id": manifest.model_id,
        "task": manifest.task,
        "dataset": manifest.dataset,
        "input_shape": list(manifest.input_shape),
        "class_names": list(manifest.class_names),
        "d": manifest.d,
        "bits": manifest.bits,
        "variable_length": manifest.variable_length,
        "beta_range": list(manifest.beta_range),
        "snr_db_range": list(manifest.snr_db_range),
        "n_links": manifest.n_links,
        "power": manifest.power,
        "entropy_coded": service.entropy.available,  # the digital links can carry it
        "link_index": encoder.link_index,
        "view": None if encoder.view is None else encoder.view.to_dict(),
    }
