"""Selective retransmission (SR), the stopping rule of VDDIB-SR (Shao, Mao & Zhang,
"Task-oriented communication for multidevice cooperative edge inference", IEEE TWC 2022,
QML-IB ref. [18]; the rule as the authors' public code applies it at inference).

Inference takes at most T rounds (T = 2 in the authors' experiments). In round t every device
sends its round-t block of features, on top of what it sent before; the edge decodes all it
has received so far with its round-t decoder q_t and takes the confidence
c_t = max_y q_t(y | received), the largest posterior probability. If c_t > threshold (strictly)
and t < T it decides with q_t and the devices stop; otherwise it asks every device for the next
round. Round T always decides. The threshold trades latency for error: 0 stops every
observation after round 1, 1 sends every round.

Units and conventions: ``confidence`` [N, T] holds c_t per observation (probabilities);
``round_symbols[t]`` is the number of real channel symbols round t adds, summed over the K links
(K·d_t); "sent" is what an observation actually costs (every round it used), so the experiment's
latency is sent / baud. The edge's request for another round (one feedback bit) is not counted:
neither the authors' code (which counts feature bits) nor QML-IB counts it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def rounds_used(confidence: torch.Tensor, threshold: float) -> torch.Tensor:
    """Rounds each observation uses (int64 [N], 1..T): the first round t < T whose confidence
    exceeds ``threshold``, else T."""
    n = confidence.shape[0]
    stops = confidence[:, :-1] > threshold
    last = torch.ones(n, 1, dtype=torch.bool, device=confidence.device)
    return torch.cat([stops, last], dim=1).to(torch.int64).argmax(dim=1) + 1


def symbols_sent(rounds: torch.Tensor, round_symbols: Sequence[int]) -> torch.Tensor:
    """Symbols sent per observation (float64 [N]): the blocks of rounds 1..rounds, summed."""
    cumulative = torch.tensor(list(round_symbols), dtype=torch.float64).cumsum(0)
    return cumulative.to(rounds.device)[rounds - 1]


def mean_sent(confidence: torch.Tensor, threshold: float, round_symbols: Sequence[int]) -> float:
    """Expected symbols per observation over ``confidence`` at ``threshold``."""
    return float(symbols_sent(rounds_used(confidence, threshold), round_symbols).mean())


def threshold_for_budget(confidence: torch.Tensor, round_symbols: Sequence[int],
                         budget: float) -> float:  # fmt: skip
    """The largest threshold (0, a confidence of a round before the last, or 1) whose expected
    symbols over ``confidence`` are at most ``budget``; 0 (round 1 only) when even that is over.

    Raising the threshold can only move an observation's first confident round later, so the
    expected symbols never fall as it rises and a bisection over the candidates finds it."""
    # unique() sorts: candidates ascend from 0 to 1
    candidates = torch.cat([torch.zeros(1), confidence[:, :-1].flatten().float().cpu(),
                            torch.ones(1)]).unique()  # fmt: skip
    low, high = 0, len(candidates) - 1  # invariant: candidates[low] fits, or low == 0
    if mean_sent(confidence, float(candidates[high]), round_symbols) <= budget:
        return float(candidates[high])
    while high - low > 1:
        mid = (low + high) // 2
        if mean_sent(confidence, float(candidates[mid]), round_symbols) <= budget:
            low = mid
        else:
            high = mid
    return float(candidates[low])
