"""The experiments' command line: `python -m trainer experiment <name>` and
`python -m trainer report` (the subcommands ``trainer/__main__.py`` adds).

Each experiment reproduces one paper figure/table on Fashion-MNIST (or simulated ranging)
and writes reports/<name>/results.json and PNG plots; ``--quick`` writes to
reports/<name>-quick/. ``report`` collects them into reports/README.md.
"""

from __future__ import annotations

import sys

from trainer.experiments.registry import EXPERIMENTS
from trainer.subcommands import add_subcommand


def cmd_experiment(args) -> int:
    import torch

    from trainer.experiments.common import default_out, run_experiment, settings_for

    torch.set_num_threads(args.threads)
    module = EXPERIMENTS[args.name]
    settings = settings_for(
        args.quick, module.FULL_EPOCHS, args.epochs, seed=args.seed, data_dir=args.data_dir,
        train_subset=args.train_subset, n_eval=args.n_eval, draws=args.draws,
        workers=args.workers, extra={"task": args.task} if args.task else {},
    )  # fmt: skip
    out = args.out or default_out(args.name, args.quick)
    run_experiment(module, settings, out, command="python -m trainer " + " ".join(sys.argv[1:]))
    return 0


def cmd_report(args) -> int:
    from trainer.experiments.report import stale_results, write_report

    if args.check:
        stale = stale_results(args.reports)
        for where, why in stale:
            print(f"stale: {args.reports}/{where}: {why}")
        print(f"{len(stale)} result folder(s) out of date with the model or experiment code")
        return 1 if stale else 0
    path = write_report(args.reports)
    print(f"wrote {path}")
    return 0


def add_parsers(sub) -> None:
    p = add_subcommand(
        sub, "experiment", "reproduce one paper figure/table -> reports/<name>/", cmd_experiment
    )
    p.add_argument("name", choices=tuple(EXPERIMENTS))
    p.add_argument(
        "--quick",
        action="store_true",
        help="1-3 minute smoke run (2 epochs, 10000 examples, 3 grid points)",
    )
    p.add_argument("--epochs", type=int, default=None, help="override the experiment's epochs")
    p.add_argument("--out", default=None, help="default reports/<name> (reports/<name>-quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--task", default=None,
        help="dataset for the experiments that take one (image-jscc: fashion-mnist, mnist, "
        "cifar10 with --data-dir)",
    )  # fmt: skip
    p.add_argument("--train-subset", type=int, default=None, help="first N training examples")
    p.add_argument("--n-eval", type=int, default=None, help="first N test examples")
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads; 1 avoids oversubscription on a shared 2-core machine",
    )  # fmt: skip
    p.add_argument("--draws", type=int, default=None, help="noise draws per evaluation point")
    p.add_argument(
        "--workers", type=int, default=1,
        help="processes the grid baselines are trained in (each with --threads torch threads)",
    )  # fmt: skip
    r = sub.add_parser("report", help="collect reports/*/results.json into reports/README.md")
    r.add_argument("--reports", default="reports")
    r.add_argument(
        "--check", action="store_true",
        help="list every shown run whose model or experiment code changed since it ran "
        "(exit 1 if any); writes nothing",
    )  # fmt: skip
    r.set_defaults(handler=cmd_report)
