"""`idle-runtime show`: picture of the tokens each idle block selects (the paper's Figure 2)."""
from __future__ import annotations

import os

from .common import (add_deprecated_alias, add_json_flag, add_model_args, atomic_output, check_output_path,
                     model_from_args, write_json)


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="draw which patches each idle block selects (GTP-ViT: propagates)",
                       description="Draw the paper's Figure 2 for one image: per idle block, the selected "
                       "patches (idle ones faded). With --onnx-files, one more row per ONNX file (fp16/int8 "
                       "conversions too), red where it selects a token PyTorch does not.")
    p.add_argument("--image", default=None,
                   help="image file (default: scikit-image's bundled 'chelsea' photograph)")
    p.add_argument("--onnx-files", nargs="+", default=[], metavar="ONNX",
                   help="ONNX files to compare (fp32, fp16, int8); the selection is read from their TopK nodes on ORT "
                        "CPU; an elastic file runs at --keep-ratio (default: none)")
    add_deprecated_alias(p, "--onnx", "--onnx-files", dest="onnx_files", nargs="+")
    add_model_args(p)
    p.add_argument("-o", "--output", default="selection.png", help="output PNG (default: selection.png)")
    add_json_flag(p, "the selection agreement per file")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..factory import image_size, model_data_config
    from ..images import eval_transform, read_rgb
    from ..runtime.inputs import photos_array
    from ..runtime.visualize import agreement, draw_selection, runner_selection, to_display
    check_output_path(args.output)
    image = read_rgb(args.image, "pass an image file with --image") if args.image else None   # before minutes of work
    model, _ = model_from_args(args)
    cfg = model_data_config(model)
    transform = eval_transform(cfg)
    x = transform(image).numpy() if image is not None else photos_array(transform, ["chelsea"])[0]
    if hasattr(model, "gtp"):
        return _show_gtp(args, model, x, cfg)
    blocks = [i for i, k in enumerate(model.keep_tokens) if k is not None]
    from .runner_args import file_runner, torch_runner
    rows = [runner_selection(torch_runner(args, model, selection=True), x, "PyTorch fp32", blocks)]
    rows += [runner_selection(file_runner(args, path, "ort", selection=True).set_keep_ratio(
        _elastic_ratio(path, args.keep_ratio)), x, os.path.basename(path), blocks) for path in args.onnx_files]
    grid = image_size(model) // model.patch_embed.patch_size[0]
    name = args.image or "skimage.data.chelsea"
    with atomic_output(args.output, suffix=".png") as tmp:
        draw_selection(to_display(x, cfg["mean"], cfg["std"]), rows, grid, tmp,
                       title=f"{args.model}  r={args.keep_ratio:g}  {name}")
    agreements = {row.label: [float(a) for a in agreement(row, rows[0])] for row in rows[1:]}
    if args.json:
        write_json({"output": args.output, "model": args.model, "keep_ratio": args.keep_ratio, "image": name,
                    "idle_blocks": blocks, "selection_agreement": agreements})
        return 0
    for label, agree in agreements.items():
        print(f"{label}: selection agreement per idle block " + " ".join(f"{a:.3f}" for a in agree))
    print(f"wrote {args.output}")
    return 0


def _show_gtp(args, model, x, cfg) -> int:
    """GTP-ViT: per block, the patches it propagated (red) and the ones they were added into (blue)."""
    from ..errors import UserError
    from ..factory import image_size
    from ..runtime.visualize import draw_propagation, gtp_propagation, to_display
    if args.onnx_files:
        raise UserError("--onnx-files compares IdleViT selections: for GTP-ViT compare files with idle-runtime parity")
    steps, top1 = gtp_propagation(model, x)
    grid = image_size(model) // model.patch_embed.patch_size[0]
    name = args.image or "skimage.data.chelsea"
    with atomic_output(args.output, suffix=".png") as tmp:
        draw_propagation(to_display(x, cfg["mean"], cfg["std"]), steps, grid, tmp,
                         title=f"{args.model}  {model.gtp.summary()}  {name}  top-1 {top1}")
    if args.json:
        write_json({"output": args.output, "model": args.model, "gtp": model.gtp.to_json(), "image": name,
                    "top1": top1, "blocks": [{"block": s.block, "propagated": s.propagated.tolist(),
                                              "receivers": s.receivers.tolist()} for s in steps]})
        return 0
    for s in steps:
        print(f"block {s.block}: propagated {len(s.propagated)} patches into {len(s.receivers)}, "
              f"{len(s.alive)} left")
    print(f"wrote {args.output}")
    return 0


def _elastic_ratio(path: str, keep_ratio: float):
    """--keep-ratio for an elastic file (it runs at the ratio drawn), None for a fixed-K one."""
    from ..onnx_file.metadata import read_metadata
    from ..runtime.reference import elastic_ratio_of
    return elastic_ratio_of(read_metadata(path), keep_ratio)
