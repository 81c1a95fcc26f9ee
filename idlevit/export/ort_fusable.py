"""Graph rewrites that put standard-ONNX patterns into the forms ONNX Runtime's CPU fusions recognise.

The file stays plain opset-18 ONNX (TensorRT parses it as before): only the order of exact
operations changes, so ONNX Runtime can fuse them into one kernel when it loads the file.
"""
from __future__ import annotations

from typing import List

import onnx


def _gelu_half_inside(op, x, root2, one, half):
    """GELU as the dynamo exporter writes it: x * (0.5 * (1 + erf(x / sqrt 2)))."""
    return op.Mul(x, op.Mul(half, op.Add(op.Erf(op.Div(x, root2)), one)))


def _gelu_half_outside(op, x, root2, one, half):
    """The same GELU as (x * (1 + erf(x / sqrt 2))) * 0.5, the order ONNX Runtime fuses into Gelu / BiasGelu."""
    return op.Mul(op.Mul(x, op.Add(op.Erf(op.Div(x, root2)), one)), half)


def fusion_rules() -> List:
    from onnxscript.rewriter import pattern
    return pattern.RewriteRule(_gelu_half_inside, _gelu_half_outside).commute()


def make_ort_fusable(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every pattern in `fusion_rules` rewritten (same ops, same values up to float rounding)."""
    from onnxscript import rewriter
    return rewriter.rewrite(model, pattern_rewrite_rules=fusion_rules())
