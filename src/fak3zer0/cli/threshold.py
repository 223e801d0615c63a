"""``fak3zer0 threshold REALS...``: a threshold set on your own genuine footage that bounds false alarms."""
from __future__ import annotations

import argparse
import json
import math
import sys

from fak3zer0 import defaults
from fak3zer0.cli._common import (add_model_options, add_progress_option, analyse, collect_paths, format_table,
                                  make_detector)

DESCRIPTION = """Set the fake threshold from real footage of the kind you will check.

The shipped model's probabilities are calibrated on its training sources; on footage from
elsewhere reals often score high (44-80 % of reals from unseen sources are called fake at 0.5,
see the model card). Give this command genuine videos/images like the ones you will scan
(same camera, channel, compression) and it prints the threshold above which at most
--false-alarm of further footage of that kind is called fake (a split-conformal bound:
the ceil((k+1)(1-a))-th smallest of the k real scores). It needs at least 1/a - 1 real
files (9 for 0.1, 19 for 0.05); more files give a threshold that varies less from one set
of reals to another.

The price is paid in missed fakes: on sources the models never saw (leave-one-source-out models),
thresholds set this way on 20 reals kept false alarms at 4.7-9.7 % (bounds 5-10 %) and caught
10-24 % of the fakes (bench/results/reals_threshold.json). The bound holds for footage like the reals you gave;
a threshold set on one kind of footage and used on another can be off either way.

Use the printed value with `fak3zer0 detect/scan/serve --threshold P`."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("threshold", help="set the fake threshold from your own real footage (bounds false alarms)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="REAL", help="genuine videos/images, folders or globs")
    p.add_argument("--inputs-from", metavar="FILE", help="also read paths from FILE, one per line")
    p.add_argument("--fakes", action="append", default=[], metavar="PATH",
                   help="known fakes of that kind (file, folder or glob; repeatable; optional): reports how many the "
                        "new threshold still catches (they do not change it)")
    p.add_argument("--false-alarm", type=float, default=defaults.DEFAULT_FALSE_ALARM, metavar="A",
                   help=f"largest share of genuine footage to call fake (default: {defaults.DEFAULT_FALSE_ALARM})")
    add_model_options(p, threshold=False)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    add_progress_option(p)
    p.set_defaults(func=run)
    return p


def round_up(x: float, digits: int = 4) -> float:
    """``x`` rounded up to ``digits`` decimals, so that a printed threshold never flags more than ``x`` does."""
    return min(1.0, math.ceil(x * 10 ** digits) / 10 ** digits)


def run(args) -> int:
    from fak3zer0.evaluate.metrics import false_alarm_threshold, reals_needed
    from fak3zer0.media import discover_inputs

    if not 0 < args.false_alarm < 1:
        print("fak3zer0 threshold: --false-alarm must be between 0 and 1", file=sys.stderr)
        return 2
    paths = collect_paths(args)
    if not paths:
        print("fak3zer0 threshold: give genuine videos/images (see --help)", file=sys.stderr)
        return 2
    detector = make_detector(args)
    results = analyse(discover_inputs(paths), detector, args.progress)
    scored = [r for r in results if r.fake_probability is not None]
    need = reals_needed(args.false_alarm)
    if len(scored) < need:
        print(f"fak3zer0 threshold: {len(scored)} of {len(results)} input(s) had a face to score; a false-alarm "
              f"bound of {args.false_alarm:g} needs at least {need} (give more real files or a larger --false-alarm)",
              file=sys.stderr)
        return 1
    scores = [r.fake_probability for r in scored]
    threshold = round_up(false_alarm_threshold(scores, args.false_alarm))
    fakes = analyse(discover_inputs(args.fakes), detector, args.progress) if args.fakes else []
    fake_scores = [r.fake_probability for r in fakes if r.fake_probability is not None]
    summary = {"threshold": threshold, "false_alarm": args.false_alarm, "model": detector.model_name,
               "reals_scored": len(scored), "no_face": sum(r.verdict == "no_face" for r in results + fakes),
               "errors": sum(r.verdict == "error" for r in results + fakes),
               "model_threshold": detector.threshold,
               "reals_at_model_threshold": sum(p >= detector.threshold for p in scores),
               "fakes_scored": len(fake_scores), "fakes_caught": sum(p >= threshold for p in fake_scores),
               "fakes_at_model_threshold": sum(p >= detector.threshold for p in fake_scores),
               "scores": [{"path": r.path, "label": label, "fake_probability": r.fake_probability}
                          for label, rs in (("real", scored), ("fake", fakes)) for r in rs
                          if r.fake_probability is not None]}
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_summary(summary)
    return 1 if summary["errors"] else 0


def print_summary(s: dict) -> None:
    ps = sorted(x["fake_probability"] for x in s["scores"] if x["label"] == "real")
    rows = [["reals scored", str(s["reals_scored"])], ["without a face / unreadable", f"{s['no_face']} / {s['errors']}"],
            ["their fake_p (min / median / max)", f"{ps[0]:.3f} / {ps[len(ps) // 2]:.3f} / {ps[-1]:.3f}"],
            [f"reals called fake at the model's threshold ({s['model_threshold']:.2f})",
             f"{s['reals_at_model_threshold']} of {s['reals_scored']}"],
            [f"threshold for at most {s['false_alarm']:.0%} false alarms", f"{s['threshold']:.4f}"]]
    if s["fakes_scored"]:
        rows += [[f"known fakes caught at the model's threshold ({s['model_threshold']:.2f})",
                  f"{s['fakes_at_model_threshold']} of {s['fakes_scored']}"],
                 ["known fakes caught at the new threshold", f"{s['fakes_caught']} of {s['fakes_scored']}"]]
    print(format_table(["", ""], rows, "lr").split("\n", 2)[2])
    print(f"\nuse it:  fak3zer0 detect --threshold {s['threshold']:.4f} PATH...   (scan and serve take --threshold too)")
    print("the bound holds for footage like these reals; a higher threshold also misses more fakes (see --help)")
