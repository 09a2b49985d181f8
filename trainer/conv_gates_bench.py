"""CPU time per training step of the CNN (shared.nn.model, arch="cnn") for each conv β gate form:
what decides the train-once vs grid time ratio of Hyper-VIB Table I.

    python -m trainer.conv_gates_bench [--steps 20] [--batch 128]

Forms: the plain grid model (gates off), per-output-channel gates (β per example), eq. (14)'s
kernel-block gates with β per example (a grouped conv, the batch folded into the groups) and
with one β per minibatch (Alg. 1's sampling; one plain conv with the gated kernel). One torch
thread, CPU (process) time, so other jobs on the machine hardly move the figures; the ratios
to the plain model are printed beside them.
"""

from __future__ import annotations

import argparse
import time

import torch

from shared.nn.model import CoInferenceModel, ModelConfig

FORMS = {  # label: (ModelConfig options, one β for the whole batch)
    "plain (grid model, gates off)": ({"beta_gate": False}, True),
    "per-channel gates, β per example": ({"conv_gate": "channel"}, False),
    "eq. (14) kernel gates, β per example": ({"conv_gate": "kernel"}, False),
    "eq. (14) kernel gates, one β per minibatch": ({"conv_gate": "kernel"}, True),
}


def step_cpu_seconds(options: dict, one_beta: bool, steps: int, batch: int) -> float:
    """Mean CPU seconds of one Adam step (forward, backward, update) after 3 warm-up steps."""
    torch.manual_seed(0)
    model = CoInferenceModel(ModelConfig(arch="cnn", snr_scale=False, **options))
    x = torch.randn(batch, 1, 28, 28)
    if one_beta:
        beta = torch.full((batch, 1), 1e-3)
    else:
        beta = torch.logspace(-5, 0, batch).view(batch, 1)
    snr = torch.full((batch, 1), 20.0)
    optimiser = torch.optim.Adam(model.parameters())
    for step in range(steps + 3):
        if step == 3:
            start = time.process_time()
        out = model(x, beta, snr)
        loss = out["outputs"].square().mean() + out["kl"].mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return (time.process_time() - start) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch < 1:
        parser.error("--steps and --batch must be >= 1")
    torch.set_num_threads(1)
    times = {
        label: step_cpu_seconds(options, one_beta, args.steps, args.batch)
        for label, (options, one_beta) in FORMS.items()
    }
    plain = next(iter(times.values()))
    print(f"CNN training step, batch {args.batch}, one thread, CPU ms (ratio to plain):")
    for label, seconds in times.items():
        print(f"  {label:45s} {1000 * seconds:7.1f} ms  ({seconds / plain:.2f}x)")


if __name__ == "__main__":
    main()
