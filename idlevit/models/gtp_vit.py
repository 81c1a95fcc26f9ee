"""GTP-ViT on timm VisionTransformer: in-place conversion and the registered `gtp_*` models.

Paper: "GTP-ViT: Efficient Vision Transformers via Graph-based Token Propagation", Xu et al., WACV 2024,
https://arxiv.org/abs/2311.03035
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import timm
import torch
from timm.models import register_model
from timm.models.vision_transformer import Block, VisionTransformer

from .gtp import GRAPH_TYPES, gtp_block_forward, spatial_graph, token_graph
from .idlevit import IdleViTMixin, KeepScheduleMixin

DEFAULT_NUM_PROP, DEFAULT_NUM_NEIGHBOURS, DEFAULT_ALPHA = 8, 8, 0.1


@dataclass(frozen=True)
class GTPSettings:
    """One GTP configuration, checked once: P per block, K graph neighbours, alpha, graph, scales, theta."""
    num_prop: Tuple[int, ...]
    num_neighbours: int = DEFAULT_NUM_NEIGHBOURS
    alpha: float = DEFAULT_ALPHA
    graph_type: str = "mixed"
    token_scale: bool = True
    sparsity: float = 1.0

    @classmethod
    def build(cls, depth: int, num_image_tokens: int, num_prop: Union[int, Sequence[int]] = DEFAULT_NUM_PROP,
              **kwargs) -> "GTPSettings":
        """Settings for `depth` blocks over `num_image_tokens`; ValueError naming the bad value and the fix."""
        props = [num_prop] * depth if isinstance(num_prop, int) else list(num_prop)
        if len(props) != depth or any(not isinstance(p, int) or isinstance(p, bool) or p < 0 for p in props):
            raise ValueError(f"num_prop={num_prop!r} is not a non-negative int or {depth} of them (one per block): "
                             "pass e.g. num_prop=8")
        if sum(props) >= num_image_tokens:
            raise ValueError(f"num_prop removes {sum(props)} of {num_image_tokens} image tokens in {depth} blocks: "
                             "pass a smaller num_prop (at least one image token must remain)")
        s = cls(tuple(props), **kwargs)
        if not isinstance(s.num_neighbours, int) or not 1 <= s.num_neighbours < num_image_tokens:
            raise ValueError(f"num_neighbours={s.num_neighbours!r} is not an int in 1..{num_image_tokens - 1}: "
                             f"pass e.g. num_neighbours={DEFAULT_NUM_NEIGHBOURS}")
        if isinstance(s.alpha, bool) or not isinstance(s.alpha, (int, float)) or s.alpha < 0:
            raise ValueError(f"alpha={s.alpha!r} is not a number >= 0: pass e.g. alpha={DEFAULT_ALPHA}")
        if s.graph_type not in GRAPH_TYPES:
            raise ValueError(f"graph_type={s.graph_type!r} is unknown: use one of {', '.join(GRAPH_TYPES)}")
        if not isinstance(s.token_scale, bool):
            raise ValueError(f"token_scale={s.token_scale!r} is not True or False: pass token_scale=True")
        if isinstance(s.sparsity, bool) or not isinstance(s.sparsity, (int, float)) or not 0 < s.sparsity <= 1:
            raise ValueError(f"sparsity={s.sparsity!r} is not in (0, 1]: pass sparsity=1.0 (no sparsification)")
        return s

    def to_json(self) -> dict:
        return dict(asdict(self), num_prop=list(self.num_prop))

    def summary(self) -> str:
        """One line for tool output: P per block, K, alpha, graph, scales (and theta when below 1)."""
        sparsity = f", sparsity {self.sparsity:g}" if self.sparsity < 1 else ""
        return (f"P per block {','.join(map(str, self.num_prop))}, K {self.num_neighbours}, alpha {self.alpha:g}, "
                f"{self.graph_type} graph, token scales {'on' if self.token_scale else 'off'}{sparsity}")


class GTPViTMixin:
    """Adds graph-based token propagation to a timm `VisionTransformer` subclass.

    Modifications:
    - `forward` embeds as timm, builds the token graph from the embedded image tokens, runs every block
      through `gtp_block_forward` (P tokens propagated after each attention) and reads the head from [CLS].
    - `gtp` holds the settings; the spatial adjacency is a non-persistent buffer, so no parameter or
      state-dict key is added and plain DeiT/timm checkpoints load strictly.
    - `forward_with_propagation` also returns which tokens each block kept and propagated.
    Blocks stay timm's own `Block`; the training path is timm's plain forward (GTP needs no training).
    """
    gtp: GTPSettings
    _embed = KeepScheduleMixin._embed
    _norm_and_head = IdleViTMixin._norm_and_head

    @property
    def num_image_tokens(self) -> int:
        return self.patch_embed.num_patches

    @property
    def keep_tokens(self) -> List[Optional[int]]:
        """No block idles tokens (tools that read IdleViT's schedule see plain blocks); `gtp` says what is removed."""
        return [None] * len(self.blocks)

    @property
    def keep_ratios(self) -> List[float]:
        return [1.0] * len(self.blocks)

    def tokens_per_block(self) -> List[int]:
        """Tokens ([CLS] included) entering each block's attention."""
        n, out = self.num_image_tokens + 1, []
        for p in self.gtp.num_prop:
            out.append(n)
            n -= p
        return out

    def _graph(self, x: torch.Tensor) -> torch.Tensor:
        return token_graph(x[:, 1:], self.gtp.graph_type, self.gtp.num_neighbours, self.spatial_adjacency)

    def _run_blocks(self, x: torch.Tensor, keep_indices: bool):
        graph = self._graph(x)
        scales = x.new_ones(x.shape[:2]) if self.gtp.token_scale else None
        indices = []
        for blk, p in zip(self.blocks, self.gtp.num_prop):
            x, graph, scales, idx = gtp_block_forward(blk, x, graph, scales, p, self.gtp.alpha, self.gtp.sparsity,
                                                      return_indices=True)
            if keep_indices:
                indices.append(idx)
        return x, indices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:      # nothing to learn: timm's plain forward, e.g. for fine-tuning the backbone
            return super().forward(x)
        return self._norm_and_head(self._run_blocks(self._embed(x), keep_indices=False)[0])

    def forward_with_propagation(self, x: torch.Tensor):
        """Logits and, per block, (kept, propagated) image-token indices into that block's input rows
        (without [CLS]), or None for a block with P = 0."""
        x, indices = self._run_blocks(self._embed(x), keep_indices=True)
        return self._norm_and_head(x), indices


_GTP_CLASSES: Dict[type, type] = {}


def make_gtp(model: VisionTransformer, num_prop: Union[int, Sequence[int]] = DEFAULT_NUM_PROP,
             **settings) -> VisionTransformer:
    """Turn a timm ViT with one [CLS] token into GTP-ViT in place (class swap; parameters unchanged).

    `settings`: num_neighbours, alpha, graph_type ("spatial", "semantic", "mixed"), token_scale, sparsity.
    """
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"{type(model).__name__} is not a timm VisionTransformer: GTP-ViT needs one")
    if getattr(model, "cls_token", None) is None or model.num_prefix_tokens != 1:
        raise ValueError(f"{type(model).__name__} has {model.num_prefix_tokens} prefix tokens: GTP-ViT needs exactly "
                         "one [CLS] token and no register/distillation tokens")
    if model.global_pool != "token":
        raise ValueError(f"{type(model).__name__} pools with {model.global_pool!r}: GTP-ViT reads the head from [CLS]")
    for i, blk in enumerate(model.blocks):
        if type(blk) is not Block or type(blk.attn).__name__ != "Attention":
            raise ValueError(f"block {i} is a {type(blk).__name__}: GTP-ViT supports timm's Block and Attention only")
    grid = model.patch_embed.grid_size
    if grid[0] != grid[1]:
        raise ValueError(f"the patch grid is {grid[0]} x {grid[1]}: GTP-ViT's spatial graph needs a square one")
    model.gtp = GTPSettings.build(len(model.blocks), model.patch_embed.num_patches, num_prop, **settings)
    model.register_buffer("spatial_adjacency", spatial_graph(grid[0]), persistent=False)
    cls = type(model)
    if not issubclass(cls, GTPViTMixin):
        if cls not in _GTP_CLASSES:
            _GTP_CLASSES[cls] = type(f"GTP{cls.__name__}", (GTPViTMixin, cls), {})
        model.__class__ = _GTP_CLASSES[cls]
    return model


def plain_copy(model: VisionTransformer) -> VisionTransformer:
    """A copy of a GTP-ViT as the plain timm backbone (same weights, no propagation): its dense baseline."""
    import copy
    plain = copy.deepcopy(model)
    if isinstance(plain, GTPViTMixin):
        del plain.spatial_adjacency, plain.gtp
        plain.__class__ = next(c for c in type(plain).__mro__ if not issubclass(c, GTPViTMixin))
    return plain


def with_num_prop(model: VisionTransformer, num_prop: int) -> VisionTransformer:
    """A copy of GTP-ViT `model` (same weights, same other settings) propagating `num_prop` tokens in every block;
    P = 0 is the plain backbone (no token graph), the dense baseline a sweep over P is timed against."""
    plain = plain_copy(model)
    if num_prop == 0:
        return plain
    return make_gtp(plain, num_prop, **{k: v for k, v in model.gtp.to_json().items() if k != "num_prop"})


def max_uniform_num_prop(model: VisionTransformer) -> int:
    """The largest P every block can propagate and still leave one image token after the last block."""
    return (model.patch_embed.num_patches - 1) // len(model.blocks)


SETTING_NAMES = ("num_prop", "num_neighbours", "alpha", "graph_type", "token_scale", "sparsity")


def _register(name: str, backbone: str):
    def fn(pretrained: bool = False, num_prop: Union[int, Sequence[int]] = DEFAULT_NUM_PROP, **kwargs):
        settings = {k: kwargs.pop(k) for k in SETTING_NAMES if k in kwargs}
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)
        return make_gtp(timm.create_model(backbone, pretrained=pretrained, **kwargs), num_prop, **settings)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"GTP-ViT on timm `{backbone}` (P = {DEFAULT_NUM_PROP}, K = {DEFAULT_NUM_NEIGHBOURS}, mixed graph)."
    fn.__module__ = __name__
    register_model(fn)
    return fn


GTP_BACKBONES = {f"gtp_{b}": b for b in ("deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224")}
for _name, _backbone in GTP_BACKBONES.items():
    globals()[_name] = _register(_name, _backbone)


def gtp_registered_name(model_name: str) -> str:
    """The timm registry name of a `gtp_<timm ViT>` name, registered the first time it is asked for."""
    if model_name not in GTP_BACKBONES:
        backbone = model_name[len("gtp_"):]
        GTP_BACKBONES[model_name] = backbone
        globals()[model_name] = _register(model_name, backbone)
    return model_name
