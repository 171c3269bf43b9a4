"""``kaffe doctor``: say why training goes wrong, with the numbers.

    kaffe doctor --solver S [--weights W] [--iterations N] [--json]
    kaffe doctor --model M [--weights W] [--image IMG] [--json]
    kaffe doctor --stats DIR [--json]

With a solver it trains N iterations on the real data (no test, no
snapshot), recording every layer's activations, gradients and updates, then
reports what it found, most severe first, causes before symptoms: raw 0–255
input, a learning rate too high, NaN/Inf (where it starts), a saturated
softmax (loss 87.3365), dead ReLUs, exploding or vanishing gradients,
labels outside the classifier's range, weights that did not load, frozen
layers, BatchNorm's use_global_stats in the wrong phase, an output that
does not depend on the input. With a deploy net it runs the static checks
and two forward passes. With --stats it reads what ``kaffe train --stats``
recorded. A finding is not an error: the exit status is 0; unreadable
files still exit 2.
"""
import json
import logging
import sys

from .flags import add_bool_flag, add_value_flag

HELP = "diagnose a training recipe or a net: findings with their numbers"
DESCRIPTION = __doc__.split("\n\n", 1)[1]
EPILOG = """\
examples:
  kaffe doctor --solver examples/mnist/lenet_solver.prototxt
  kaffe doctor --solver finetune_solver.prototxt --weights base.caffemodel
  kaffe doctor --model deploy.prototxt --weights net.caffemodel --image a.jpg
  kaffe train --solver solver.prototxt --stats run1
  kaffe doctor --stats run1
  kaffe doctor --solver solver.prototxt --json | jq '.findings[0].kind'"""

# Building and training log every layer; the report is the output.
LOG_LEVEL = logging.WARNING


def add_arguments(parser):
    from .explain import parse_shape
    add_value_flag(parser, "solver", metavar="S.prototxt",
                   help="train this solver's net for --iterations and check")
    add_value_flag(parser, "model", metavar="M.prototxt",
                   help="check a deploy net (static checks and a forward "
                        "pass)")
    add_value_flag(parser, "stats", metavar="DIR",
                   help="check a run recorded by kaffe train --stats DIR")
    add_value_flag(parser, "weights", metavar="W1[,W2...]",
                   help="weights to start from (layers matched by name; "
                        "what does not match is a finding)")
    add_value_flag(parser, "iterations", type=int, default=50,
                   metavar="N", help="training iterations to watch "
                                     "(default 50)")
    add_value_flag(parser, "image", metavar="IMG",
                   help="with --model: the image to run (default a "
                        "synthetic pattern)")
    parser.add_argument("--shape", metavar="BLOB=N,C,H,W", action="append",
                        default=[], type=parse_shape,
                        help="with --model: the shape of a data-layer top "
                             "whose source is not opened (as kaffe "
                             "explain); repeatable")
    add_value_flag(parser, "save_stats", metavar="DIR",
                   help="with --solver: also write the recorded statistics "
                        "to DIR (for kaffe viz --stats)")
    add_value_flag(parser, "level", type=int, default=0,
                   help="the train net's level (default 0)")
    add_value_flag(parser, "stage", default="", metavar="S1[,S2...]",
                   help="the train net's stages, comma-separated")
    add_bool_flag(parser, "json", help="print the findings as JSON")


def run(args):
    from ..errors import KaffeConfigError
    from ..doctor import (diagnose_model, diagnose_solver, diagnose_stats,
                          report_json)
    from .flags import stages
    given = [f for f in ("solver", "model", "stats") if getattr(args, f)]
    if len(given) != 1:
        raise KaffeConfigError(
            "needs exactly one of --solver, --model and --stats",
            received=" ".join(f"--{f}" for f in given) or "none",
            fix="pass --solver S to train and check, --model M for a deploy "
                "net, or --stats DIR for a recorded run")
    if args.stats and args.weights:
        raise KaffeConfigError("cannot be used with --stats (the recorded "
                               "run already says what was loaded)",
                               field="--weights")
    weights = [w for w in (args.weights or "").split(",") if w]
    if args.solver:
        findings, recorded = diagnose_solver(
            args.solver, weights=weights, iterations=args.iterations,
            level=args.level, stages=stages(args))
        if args.save_stats:
            _save(args.save_stats, recorded)
        what = f"{args.iterations} training iterations of {args.solver}"
    elif args.model:
        if len(weights) > 1:
            raise KaffeConfigError("takes one weight file with --model",
                                   field="--weights", received=args.weights)
        from .explain import collect_shapes
        findings, recorded = diagnose_model(
            args.model, weights=weights[0] if weights else None,
            image=args.image, shapes=collect_shapes(args.shape))
        what = f"deploy net {args.model}"
    else:
        findings, recorded = diagnose_stats(args.stats)
        what = f"{len(recorded.sampled)} recorded iterations in {args.stats}"
    if recorded.error and findings:
        what += f" (stopped early: {recorded.error})"
    if args.json:
        json.dump(report_json(findings), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_report(findings, recorded, what))
    return 0


def _save(directory, recorded):
    from ..doctor import StatsWriter
    writer = StatsWriter(directory, recorded.meta)
    for record in recorded.records:
        writer(record)
    writer.close()


def format_report(findings, recorded, what):
    """The findings as text for a terminal."""
    from ..doctor import healthy
    net = recorded.net
    lines = [f"kaffe doctor: net '{net['name']}' ({net['phase']}), {what}"]
    for note in recorded.meta.get("notes", []):
        lines.append(f"note: {note}")
    if not findings:
        lines.append("No findings: nothing looks wrong.")
    for f in findings:
        where = []
        if f.layer:
            where.append(f"layer '{f.layer}'")
        if f.blob:
            where.append(f"blob '{f.blob}'")
        if f.iteration is not None:
            where.append(f"iteration {f.iteration}")
        lines.append("")
        lines.append(f"{f.severity.upper():8s}{f.kind}"
                     + (f"  ({', '.join(where)})" if where else ""))
        lines.append(f"        {f.message}")
        evidence = f.to_json()["evidence"]
        shown = ", ".join(f"{k}={_short(v)}" for k, v in evidence.items()
                          if v not in (None, [], {}))
        if shown:
            lines.append(f"        evidence: {shown}")
        lines.append(f"        fix: {f.fix}")
    counts = {s: sum(1 for f in findings if f.severity == s)
              for s in ("error", "warning", "info")}
    lines.append("")
    lines.append(("healthy" if healthy(findings) else "NOT healthy") + ": "
                 + ", ".join(f"{n} {s}{'s' if n != 1 else ''}"
                             for s, n in counts.items()))
    return "\n".join(lines) + "\n"


def _short(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 120 else text[:117] + "..."
    return str(value)
