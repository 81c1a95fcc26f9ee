"""Graph rewrites that put standard-ONNX patterns into the forms ONNX Runtime's CPU fusions recognise.

The file stays plain opset-18 ONNX (TensorRT parses it as before): only the order or the grouping of exact
operations changes, so ONNX Runtime can fuse them into one kernel when it loads the file.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import onnx


def _gelu_half_inside(op, x, root2, one, half):
    """GELU as the dynamo exporter writes it: x * (0.5 * (1 + erf(x / sqrt 2)))."""
    return op.Mul(x, op.Mul(half, op.Add(op.Erf(op.Div(x, root2)), one)))


def _gelu_half_outside(op, x, root2, one, half):
    """The same GELU as (x * (1 + erf(x / sqrt 2))) * 0.5, the order ONNX Runtime fuses into Gelu / BiasGelu."""
    return op.Mul(op.Mul(x, op.Add(op.Erf(op.Div(x, root2)), one)), half)


def _swap_last_two_by_reshapes(op, x, flat_shape, start, end, last, second):
    """k^T as the dynamo exporter writes it for attention of any rank: flatten the leading dims to one,
    transpose the last two, and restore the leading dims from Shape(x)."""
    lead = op.Slice(op.Shape(x, _outputs=["x_shape"]), start, end)
    flat_t = op.Transpose(op.Reshape(x, flat_shape), perm=[0, 2, 1])
    return op.Reshape(flat_t, op.Concat(lead, last, second, axis=0))


def _swap_last_two_by_const_reshapes(op, x, flat_shape, out_shape):
    """The same k^T once the simplifier has folded the restoring shape into a constant."""
    return op.Reshape(op.Transpose(op.Reshape(x, flat_shape), perm=[0, 2, 1]), out_shape)


def _const(value) -> Optional[List[int]]:
    c = value.const_value
    return None if c is None else np.asarray(c.numpy()).reshape(-1).tolist()


def _last_two_static(x) -> Optional[tuple]:
    """(rank, rows, cols) of x when its rank is known (>= 3) and its last two dims are static."""
    shape = x.shape
    if shape is None or len(shape) < 3 or not all(isinstance(d, int) for d in shape[-2:]):
        return None
    return (len(shape), *shape[-2:])


def _swaps_last_two(context, x, x_shape, flat_shape, start, end, last, second, **_) -> bool:
    """True when the Shape-built pattern is exactly x with its last two dims swapped."""
    dims = _last_two_static(x)
    consts = [_const(v) for v in (flat_shape, start, end, last, second)]
    if dims is None or any(c is None for c in consts):
        return False
    (rank, rows, cols), (flat, s, e, lst, sec) = dims, consts
    shape_node = x_shape.producer()
    if shape_node.attributes.get_int("start", 0) != 0 or shape_node.attributes.get("end") is not None:
        return False
    whole_prefix = len(s) == 1 and len(e) == 1 and (s[0] == 0 or s[0] <= -rank) and e[0] in (-2, rank - 2)
    return whole_prefix and flat == [-1, rows, cols] and lst == [cols] and sec == [rows]


def _swaps_last_two_const(context, x, flat_shape, out_shape, **_) -> bool:
    """True when the constant-shape pattern is exactly x with its last two dims swapped: the restoring shape
    repeats x's static leading dims and has one -1 where x's one symbolic dim (the batch) is."""
    dims = _last_two_static(x)
    flat, out = _const(flat_shape), _const(out_shape)
    if dims is None or flat is None or out is None:
        return False
    rank, rows, cols = dims
    lead = list(x.shape)[:-2]
    symbolic = [i for i, d in enumerate(lead) if not isinstance(d, int)]
    expected = [-1 if i in symbolic else d for i, d in enumerate(lead)] + [cols, rows]
    return len(symbolic) <= 1 and flat == [-1, rows, cols] and out == expected


def _swap_last_two(op, x, **_):
    """The same k^T as one Transpose, which ONNX Runtime merges with the head split's Transpose."""
    rank = len(x.shape)
    return op.Transpose(x, perm=list(range(rank - 2)) + [rank - 1, rank - 2])


def fusion_rules() -> List:
    from onnxscript.rewriter import pattern
    gelu = pattern.RewriteRule(_gelu_half_inside, _gelu_half_outside).commute()
    key_transpose = [pattern.RewriteRule(_swap_last_two_by_reshapes, _swap_last_two, _swaps_last_two),
                     pattern.RewriteRule(_swap_last_two_by_const_reshapes, _swap_last_two, _swaps_last_two_const)]
    return pattern.RewriteRuleSet([*gelu, *key_transpose])


def make_ort_fusable(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every pattern in `fusion_rules` rewritten (same ops, same values up to float rounding)."""
    from onnxscript import rewriter
    return rewriter.rewrite(model, pattern_rewrite_rules=fusion_rules())
