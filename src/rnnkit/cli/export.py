"""``rnnkit export RUN --onnx FILE``: a trained model as an ONNX file (see rnnkit.export)."""

from __future__ import annotations

import argparse
import json


def register(commands: argparse._SubParsersAction) -> None:
    from rnnkit.export import OPSET

    p = commands.add_parser(
        "export",
        help="write a trained model as an ONNX file that runs without rnnkit",
        description="Write a trained model as an ONNX file (checked in onnxruntime when it is "
        "installed): the language model one step with its state in and out, the classifier "
        "padded batches with their lengths.",
        usage="rnnkit export RUN --onnx FILE [--opset N] [--no-check] [--json]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default: {OPSET})")
    p.add_argument(
        "--no-check", action="store_true", help="do not run the file in onnxruntime afterwards"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    from rnnkit.export import export_onnx

    files = export_onnx(args.model, args.onnx, opset=args.opset, check=not args.no_check)
    if args.json:
        rows = [{**vars(f), "path": str(f.path)} for f in files]
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return 0
    for f in files:
        print(f"wrote {f.path} (ONNX opset {f.opset})")
        for title, names in (("inputs", f.inputs), ("outputs", f.outputs)):
            width = max(map(len, names))
            for i, (name, what) in enumerate(names.items()):
                print(f"  {title if i == 0 else '':8} {name:{width}}  {what}")
        if f.extras:
            print(f"  metadata: {', '.join(f.extras)} (the checkpoint's files, as JSON)")
        if f.max_abs_diff is None:
            why = "--no-check" if args.no_check else "pip install 'rnnkit[export]' to run it"
            print(f"  not checked in onnxruntime ({why})")
        else:
            diffs = ", ".join(f"{k} {v:.1e}" for k, v in f.max_abs_diff.items())
            same = {True: "; the same argmax", False: "; DIFFERENT argmax", None: ""}
            print(f"  onnxruntime vs torch: max |difference| {diffs}{same[f.same_argmax]}")
    return 0 if all(f.same_argmax is not False for f in files) else 1
