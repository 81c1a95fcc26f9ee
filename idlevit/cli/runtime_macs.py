"""`idle-runtime macs`: executed GMACs (FlopCounterMode) and the paper's convention."""
from __future__ import annotations

from .common import add_json_flag, add_model_args, model_from_args, print_table, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("macs", help="count executed MACs and the paper-convention MACs",
                       description="Count MACs of one eval forward with torch's FlopCounterMode "
                       "(executed) and with the paper's Table 1 convention.")
    add_model_args(p)
    add_json_flag(p, "the MAC counts")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..factory import image_size
    from ..runtime.macs import mac_report
    model, _ = model_from_args(args, warn_random=False)  # MACs do not depend on the weights
    report = mac_report(model, args.model, args.keep_ratio, image_size(model))
    if args.json:
        write_json(report.to_json())
        return 0
    if report.method == "gtp":
        print(f"{args.model}  {model.gtp.summary()}  img_size={report.img_size}")
        print_table([["executed (FlopCounterMode, measured)", f"{report.gmacs_executed:.3f}"],
                     ["executed (analytic cost model)", f"{report.gmacs_formula:.3f}"],
                     ["  of which token graph and propagation", f"{report.gmacs_graph:.3f}"]],
                    ["GMACs per image", "value"])
        print("tokens per block:", " ".join(map(str, report.tokens_per_block)))
        return 0
    print(f"{args.model}  keep_ratio={args.keep_ratio:g}  img_size={report.img_size}")
    print_table([["executed (FlopCounterMode, measured)", f"{report.gmacs_executed:.3f}"],
                 ["executed (analytic cost model)", f"{report.gmacs_formula:.3f}"],
                 ["published method (keys of all tokens)", f"{report.gmacs_reference:.3f}"],
                 ["paper Table 1 convention (2*s*n*C attention)", f"{report.gmacs_paper:.3f}"],
                 ["Token Labeling hand count (LV-ViT's published figures)", f"{report.gmacs_token_labeling:.3f}"]],
                ["GMACs per image", "value"])
    print("tokens per block:", " ".join(map(str, report.tokens_per_block)))
    return 0
