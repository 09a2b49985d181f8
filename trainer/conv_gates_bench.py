"""CPU time per training step of the CNN (shared.nn.model, arch="cnn") for each conv β gate form:
what decides the train-once vs grid time ratio of Hyper-VIB Table I.

    python -m trainer.conv_gates_bench [--steps 20] [--batch 128]

Forms: the plain grid model (gates off), per-output-channel gates (β per example), eq. (14)'s
kernel-block gates with β per example (a grouped conv, the batch folded into the groups), with
one β per minibatch (Alg. 1's sampling; one plain conv with the gated kernel) and with T = 8
draws per minibatch (the CNN headline: 8 interleaved parts, one grouped conv over them). One torch
thread, CPU (process) time, so other jobs on the machine hardly move the figures; the ratios
to the plain model are printed beside them.
"""

from __future__ import annotations

import argparse
import time

import torch

from shared.nn.model import CoInferenceModel, ModelConfig

FORMS = {  # label: (ModelConfig options, β draws per batch: 1, T, or 0 for one per example)
    "plain (grid model, gates off)": ({"beta_gate": False}, 1),
    "per-channel gates, β per example": ({"conv_gate": "channel"}, 0),
    "eq. (14) kernel gates, β per example": ({"conv_gate": "kernel"}, 0),
    "eq. (14) kernel gates, one β per minibatch": ({"conv_gate": "kernel"}, 1),
    "eq. (14) kernel gates, T = 8 draws per minibatch": ({"conv_gate": "kernel"}, 8),
}


def step_cpu_seconds(options: dict, draws: int, steps: int, batch: int) -> float:
    """Mean CPU seconds of one Adam step (forward, backward, update) after 3 warm-up steps."""
    torch.manual_seed(0)
    model = CoInferenceModel(ModelConfig(arch="cnn", snr_scale=False, **options))
    x = torch.randn(batch, 1, 28, 28)
    if draws:  # example i takes draw i mod T, as trainer.train.sample_beta lays them out
        beta = torch.logspace(-5, 0, draws).repeat(-(-batch // draws))[:batch].view(batch, 1)
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
        label: step_cpu_seconds(options, draws, args.steps, args.batch)
        for label, (options, draws) in FORMS.items()
    }
    plain = next(iter(times.values()))
    print(f"CNN training step, batch {args.batch}, one thread, CPU ms (ratio to plain):")
    for label, seconds in times.items():
        print(f"  {label:50s} {1000 * seconds:7.1f} ms  ({seconds / plain:.2f}x)")


if __name__ == "__main__":
    main()
