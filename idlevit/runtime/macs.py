"""Executed MACs (measured with torch's FlopCounterMode) and the paper's Table 1 convention."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List

import torch
from torch.utils import flop_counter


@dataclass
class MacReport:
    model: str
    keep_ratio: float
    img_size: int
    gmacs_executed: float          # measured on the real eval forward, per image
    gmacs_formula: float           # analytic executed cost (2*s^2*C attention), for cross-checking
    gmacs_paper: float             # paper convention (2*s*n*C attention)
    tokens_per_block: List[int]    # tokens that run through each block, [CLS] included

    def to_json(self) -> dict:
        return asdict(self)


# Every fused scaled-dot-product-attention kernel, each taking (B, H, L, E) query, key, value first. Not every
# torch registers all of them with its flop counter: on CPU, torch <= 2.14 runs SDPA as the unregistered
# `_scaled_dot_product_flash_attention_for_cpu`, whose attention would then count as zero MACs. The math
# variant needs no entry: it decomposes into matmuls, which are counted.
SDPA_FORWARD_OPS = ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu",
                    "_scaled_dot_product_fused_attention_overrideable")
SDPA_BACKWARD_OPS = tuple(f"{name}_backward" for name in SDPA_FORWARD_OPS)


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def sdpa_flop_formulas() -> dict:
    """torch's own SDPA flop formulas for every SDPA kernel this torch has, registered or not."""
    aten = torch.ops.aten
    formulas = {getattr(aten, name): _sdpa_flops for name in SDPA_FORWARD_OPS if hasattr(aten, name)}
    formulas.update({getattr(aten, name): _sdpa_backward_flops for name in SDPA_BACKWARD_OPS if hasattr(aten, name)})
    return formulas


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """A quiet FlopCounterMode that counts attention whichever SDPA kernel torch picks."""
    return flop_counter.FlopCounterMode(display=False, custom_mapping=sdpa_flop_formulas())


def count_executed_macs(model: torch.nn.Module, img_size: int, batch: int = 1) -> float:
    """MACs per image of one eval forward, counted op by op (matmuls, convs, attention)."""
    x = torch.randn(batch, 3, img_size, img_size)
    with torch.no_grad(), flop_counter_mode() as counter:
        model(x)
    return counter.get_total_flops() / 2 / batch


def _dims(model):
    c = model.embed_dim
    n = model.patch_embed.num_patches + model.num_prefix_tokens
    hidden = model.blocks[0].mlp.fc1.out_features
    patch = model.patch_embed.proj
    p_macs = patch.in_channels * patch.kernel_size[0] * patch.kernel_size[1] * patch.out_channels
    embed = model.patch_embed.num_patches * p_macs
    head = c * model.num_classes if model.num_classes else 0
    return c, n, hidden, embed, head


def analytic_macs(model, convention: str = "executed") -> float:
    """MACs per image from the cost model: plain block 4NC^2 + 2NCh + 2N^2C; idle block
    NC^2 (keys) + 3sC^2 (q, v, proj) + 2sCh (MLP) + attention, where attention is 2s^2C
    ("executed") or 2snC ("paper", Table 1)."""
    c, n, hidden, embed, head = _dims(model)
    total = embed + head
    for k in model.keep_tokens:
        if k is None:
            total += 4 * n * c * c + 2 * n * c * hidden + 2 * n * n * c
            continue
        s = k + 1
        attn = 2 * s * s * c if convention == "executed" else 2 * s * n * c
        total += n * c * c + 3 * s * c * c + 2 * s * c * hidden + attn
    return total


def tokens_per_block(model) -> List[int]:
    n = model.patch_embed.num_patches + model.num_prefix_tokens
    return [n if k is None else k + 1 for k in model.keep_tokens]


def mac_report(model, model_name: str, keep_ratio: float, img_size: int) -> MacReport:
    return MacReport(
        model=model_name, keep_ratio=keep_ratio, img_size=img_size,
        gmacs_executed=count_executed_macs(model, img_size) / 1e9,
        gmacs_formula=analytic_macs(model, "executed") / 1e9,
        gmacs_paper=analytic_macs(model, "paper") / 1e9,
        tokens_per_block=tokens_per_block(model),
    )
