"""``fak3zer0 train CONFIG [KEY=VALUE ...]``: train a registered model from a YAML config."""
from __future__ import annotations

import argparse

DESCRIPTION = """Train any registered model from a small YAML config (see configs/ and docs/training.md).

Dotted overrides change the config from the command line, values parsed as YAML:
  fak3zer0 train configs/meso4_dev.yaml model.name=meso_inception4 train.epochs=5 optim.lr=3e-4

The run folder gets config.yaml, best.pt / last.pt checkpoints, metrics.csv, loss/AUC plots and a
calibration report. Continue a run with --resume RUN_DIR (raise train.epochs to train further).
Multi-GPU: the same command under `torchrun --nproc_per_node N -m fak3zer0.cli train ...`."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model from a YAML config", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="YAML config file (optional with --resume)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from fak3zer0.errors import ConfigError
    from fak3zer0.train.trainer import train_from_cli

    config, overrides = args.config, list(args.overrides)
    if config and "=" in config and not config.endswith((".yaml", ".yml")):
        overrides.insert(0, config)
        config = None
    if not config and not args.resume:
        raise ConfigError("give a CONFIG file (e.g. configs/meso4_dev.yaml) or --resume RUN_DIR")
    run_dir = train_from_cli(config, overrides, args.resume)
    print(run_dir)
    return 0
