"""One observation, K devices (QML-IB): send each image to every device of a multi-link model
at once, under one request id, which the devices use as the group id; each device crops its
own view and sends over its own link, and the edge answers all of them with one decision.

    python -m client --devices http://127.0.0.1:8080,http://127.0.0.1:8081 --test-samples 100
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

# Works on client.http's DeviceHttp / Sample / Outcome (duck-typed: client.http imports
# this module); a client has ``infer(sample, request_id) -> Outcome``.


@dataclass
class Unreachable:
    """A device that did not answer at all (connection refused, timeout): HTTP-like 599."""

    sample: Any
    detail: str
    status: int = 599
    http_s: float = float("nan")
    ok: bool = False

    @property
    def reply(self) -> dict[str, Any]:
        return {"detail": self.detail}


def _result(future, sample) -> Any:
    try:
        return future.result()
    except Exception as exc:  # httpx errors: the device is down or too slow
        return Unreachable(sample, f"{type(exc).__name__}: {exc}")


@dataclass
class GroupOutcome:
    """The K devices' outcomes for one image."""

    sample: Any  # client.http.Sample
    group_id: str
    outcomes: list[Any]  # client.http.Outcome, one per device, in --devices order

    @property
    def answered(self) -> list[Any]:
        return [o for o in self.outcomes if o.ok]

    @property
    def label(self) -> int | None:
        return self.answered[0].reply.get("label") if self.answered else None

    @property
    def partial(self) -> bool:
        return any(o.reply.get("group", {}).get("partial") for o in self.answered)

    @property
    def missing_links(self) -> list[int]:
        missing = {
            k for o in self.answered for k in o.reply.get("group", {}).get("missing_links", [])
        }
        return sorted(missing)


def send_group(clients: Sequence[Any], sample: Any, pool: ThreadPoolExecutor) -> GroupOutcome:
    """POST the image to every device at once under one fresh request (= group) id."""
    group_id = uuid.uuid4().hex
    futures = [pool.submit(client.infer, sample, group_id) for client in clients]
    return GroupOutcome(sample, group_id, [_result(f, sample) for f in futures])


def run_groups(clients: Sequence[Any], samples: Sequence[Any]) -> list[GroupOutcome]:
    with ThreadPoolExecutor(len(clients)) as pool:
        return [send_group(clients, sample, pool) for sample in samples]


def summarise_groups(groups: Sequence[GroupOutcome]) -> dict[str, Any]:
    """Accuracy of the group decisions, how many were partial, answers per device."""
    judged = [g.label == g.sample.label for g in groups
              if g.label is not None and g.sample.label is not None]  # fmt: skip
    k = len(groups[0].outcomes) if groups else 0
    return {
        "n": len(groups),
        "decided": sum(g.label is not None for g in groups),
        "accuracy": float(np.mean(judged)) if judged else None,
        "partial": sum(g.partial for g in groups),
        "answered_per_device": [sum(g.outcomes[i].ok for g in groups) for i in range(k)],
        "agree": all(len({o.reply.get("label") for o in g.answered}) <= 1 for g in groups),
    }


def print_groups(groups: Sequence[GroupOutcome], urls: Sequence[str]) -> None:
    s = summarise_groups(groups)
    accuracy = "-" if s["accuracy"] is None else f"{s['accuracy']:.4f}"
    print(f"{s['decided']}/{s['n']} observations decided by the edge, accuracy {accuracy}, "
          f"{s['partial']} partial (a link missing), devices agree: {s['agree']}")  # fmt: skip
    for url, count in zip(urls, s["answered_per_device"], strict=True):
        print(f"  {url}: {count}/{s['n']} answered")
