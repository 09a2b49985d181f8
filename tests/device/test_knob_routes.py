"""``PUT /v1/knobs`` over HTTP (the real app and model; the channel is never called): strict
types, a 422 that names the field, and the knobs left as they were."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from device.app import create_app
from device.settings import DeviceSettings


@pytest.fixture
def client(quick_model_dir, tmp_path):
    settings = DeviceSettings(model=quick_model_dir, channel="127.0.0.1:9", data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"beta": True}, "beta"),  # a JSON boolean is not a number (it was taken as 1.0)
        ({"beta": False}, "beta"),
        ({"beta": "0.1"}, "beta"),  # nor is a string
        ({"snr_db": True}, "snr_db"),
        ({"snr_db": "12"}, "snr_db"),
        ({"variable_length": 1}, "variable_length"),  # a number is not a flag
        ({"variable_length": "true"}, "variable_length"),
        ({"snr_mode": 0}, "snr_mode"),
        ({"beta": 0.01, "variable_length": 0}, "variable_length"),  # nothing applied
    ],
)
def test_a_wrong_type_is_a_422_naming_the_field_and_changes_nothing(client, body, field):
    before = client.get("/v1/knobs").json()
    reply = client.put("/v1/knobs", json=body)
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert detail.startswith(f"invalid request: {field}: "), detail
    assert client.get("/v1/knobs").json() == before


def test_numbers_and_flags_of_the_right_type_are_taken(client):
    low, high = client.get("/v1/knobs").json()["beta_range"]
    assert low < 0.01 < high
    reply = client.put("/v1/knobs", json={"beta": 0.01, "variable_length": False})
    assert reply.status_code == 200, reply.text
    assert reply.json()["beta"] == 0.01 and reply.json()["variable_length"] is False
    reply = client.put("/v1/knobs", json={"beta": 1})  # a JSON integer is a number
    assert reply.status_code == 200 and reply.json()["beta"] == 1.0
    assert client.get("/v1/knobs").json()["beta"] == 1.0
