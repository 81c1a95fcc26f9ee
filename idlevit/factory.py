"""Build an IdleViT from a model name, keep ratio and optional local checkpoint (used by every CLI).

The model itself always comes from the timm registry (`timm.create_model("idlevit_...")`); this adds the
argument checks, the seed, the checkpoint and the random-weights warning on top."""
from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import timm
import torch

from .checkpoint import load_checkpoint
from .errors import UserError
from .limits import FLOAT_BYTES, check_batch_size, check_fits_memory, check_image_size, vit_forward_bytes
from .models import backbone_name, registered_name
from .models.names import DEFAULT_MODEL, is_gtp  # noqa: F401  (DEFAULT_MODEL re-exported for the CLIs and runtime)
from .models.schedule import DEFAULT_KEEP_RATIO, KeepSchedule


@dataclass
class ModelSource:
    """Where a model's weights came from: recorded in ONNX metadata and sidecars."""
    model_name: str
    ckpt: Optional[str] = None
    ckpt_sha256: Optional[str] = None
    seed: Optional[int] = None
    keep_ratios: list = field(default_factory=list)
    model_kwargs: dict = field(default_factory=dict)   # extra timm.create_model arguments (--model-kwargs)


def create_idlevit(model_name: str = DEFAULT_MODEL, keep_ratio: float = DEFAULT_KEEP_RATIO,
                   keep_ratios: Optional[Sequence[float]] = None, ckpt: Optional[str] = None,
                   img_size: Optional[int] = None, seed: int = 0, num_classes: Optional[int] = None,
                   warn_random: bool = True, **kwargs):
    """IdleViT in eval mode plus its `ModelSource`.

    Without `ckpt` the weights are timm's init under `torch.manual_seed(seed)`, so the same
    name and seed always rebuild the same model (export and parity rely on this).
    Any timm ViT name with a [CLS] token works; `idlevit_*` names map to their backbone. A `gtp_*` name
    builds GTP-ViT instead: its settings (num_prop, num_neighbours, alpha, graph_type, token_scale,
    sparsity) come in `kwargs` and the keep ratio does not apply.
    """
    if is_gtp(model_name):
        if keep_ratios is not None:
            raise UserError(f"{model_name} is GTP-ViT, which has no keep-ratio schedule: drop --keep-ratios and set "
                            "its settings with --model-kwargs num_prop=8 ...")
        return _create_gtp(model_name, ckpt, img_size, seed, num_classes, warn_random, **kwargs)
    try:
        KeepSchedule(keep_ratio, keep_ratios)
    except ValueError as e:
        raise UserError(str(e)) from None
    backbone = backbone_name(model_name)
    model_kwargs = dict(kwargs)
    if not timm.is_model(backbone):
        raise UserError(f"unknown model {model_name!r}: use one of the idlevit_deit_* / idlevit_lvvit_* names or a timm ViT name "
                        "such as deit3_small_patch16_224")
    kwargs = _timm_kwargs(model_name, img_size, num_classes, kwargs)
    torch.manual_seed(seed)
    try:
        model = timm.create_model(registered_name(model_name), pretrained=False, keep_ratio=keep_ratio,
                                  keep_ratios=keep_ratios, **kwargs)
    except (ValueError, TypeError, AssertionError) as e:
        raise UserError(f"cannot build {model_name}: {e}") from None
    source = _load_weights(model, model_name, ckpt, seed, warn_random, list(model.keep_ratios))
    source.model_kwargs = model_kwargs
    return model.eval(), source



def _timm_kwargs(name: str, img_size: Optional[int], num_classes: Optional[int], kwargs: dict) -> dict:
    """timm.create_model's keyword arguments, checked against `name`'s signature before anything is built."""
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if img_size is not None or kwargs:
        check_build_args(name, img_size, **kwargs)
    if img_size is not None:
        kwargs["img_size"] = img_size
    return kwargs


def _create_gtp(model_name: str, ckpt: Optional[str], img_size: Optional[int], seed: int,
                num_classes: Optional[int], warn_random: bool, **kwargs):
    """GTP-ViT in eval mode plus its `ModelSource` (the `create_idlevit` path for `gtp_*` names)."""
    from .models.gtp_vit import SETTING_NAMES, gtp_registered_name
    backbone = model_name[len("gtp_"):]
    if not timm.is_model(backbone):
        raise UserError(f"unknown model {model_name!r}: use gtp_deit_tiny/small/base_patch16_224 or gtp_<timm ViT name>")
    model_kwargs = dict(kwargs)
    settings = {k: kwargs.pop(k) for k in SETTING_NAMES if k in kwargs}
    kwargs = _timm_kwargs(backbone, img_size, num_classes, kwargs)
    torch.manual_seed(seed)
    try:
        model = timm.create_model(gtp_registered_name(model_name), pretrained=False, **settings, **kwargs)
    except (ValueError, TypeError, AssertionError) as e:
        raise UserError(f"cannot build {model_name}: {e}") from None
    source = _load_weights(model, model_name, ckpt, seed, warn_random, [])
    source.model_kwargs = {k: v for k, v in model_kwargs.items() if k not in SETTING_NAMES}
    return model.eval(), source


def _load_weights(model, model_name: str, ckpt: Optional[str], seed: int, warn_random: bool,
                  keep_ratios: list) -> ModelSource:
    """Load `ckpt` strictly into `model` (or warn about the seeded random weights); the ModelSource."""
    source = ModelSource(model_name, seed=None if ckpt else seed, keep_ratios=keep_ratios)
    if ckpt:
        source.ckpt = ckpt
        source.ckpt_sha256 = load_checkpoint(model, ckpt, model_name)
    elif warn_random:
        warnings.warn(f"no --ckpt given: {model_name} uses seeded random weights (seed {seed}); "
                      "numbers are for speed and parity, not accuracy", stacklevel=3)
    return source


def check_build_args(model_name: str, img_size: Optional[int] = None, **kwargs) -> None:
    """Refuse a bad image size or model argument on a weightless (meta-device) build, before allocating.

    The image size must be a positive multiple of the patch size and one image's forward must fit
    in the memory left; a model argument of the wrong type is named with the type it needs.
    """
    backbone = backbone_name(model_name)
    try:
        probe = _meta_model(backbone, **kwargs)
    except (ValueError, TypeError, AssertionError) as e:
        cls = type(_meta_model(backbone))
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        given = " ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserError(_text_for_number(cls, kwargs) or f"cannot build {model_name} with {given} ({first}): "
                        f"check these model arguments against timm's {cls.__name__}") from None
    wrong = _text_for_number(type(probe), kwargs)   # timm takes qkv_bias='no' as True: refuse it here
    if wrong:
        raise UserError(wrong)
    if img_size is None:
        return
    check_image_size(img_size, int(probe.patch_embed.patch_size[0]))
    check_fits_memory(forward_bytes(probe, img_size=img_size), f"{model_name} at --img-size {img_size}",
                      f"pass a smaller --img-size (the model's own is {image_size(probe)})")


def _meta_model(backbone: str, **kwargs):
    """The timm model without weights (meta device, no init): its structure costs no memory or time."""
    with torch.device("meta"):
        return timm.create_model(backbone, pretrained=False, weight_init="skip", **kwargs)


def _text_for_number(cls, kwargs: dict) -> Optional[str]:
    """The error for a model argument given as text where `cls` takes a number or a flag, else None."""
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()}
    for key, value in kwargs.items():
        default = defaults.get(key)
        if isinstance(value, str) and isinstance(default, (bool, int, float)):
            need = "True or False" if isinstance(default, bool) else "a number"
            return f"model argument {key}={value!r} is not {need}: pass e.g. {key}={default!r} (timm's default)"
    return None


def forward_bytes(model, batch: int = 1, img_size: Optional[int] = None) -> int:
    """Estimated bytes of one eval forward of `model` on `batch` images (at `img_size`), inputs included."""
    patch = model.patch_embed.patch_size
    blocks = list(model.blocks)
    return vit_forward_bytes(img_size or image_size(model), int(patch[0] if isinstance(patch, (tuple, list)) else patch),
                             int(model.embed_dim), len(blocks), int(blocks[0].attn.num_heads) if blocks else 1, batch)


def check_batch_fits(model, batch: int, flag: str = "-b/--batch-size", forward_on_cpu: bool = True) -> None:
    """A batch of at least one image whose inputs (and CPU forward) fit in the memory left."""
    check_batch_size(batch, flag)
    img = image_size(model)
    need = forward_bytes(model, batch) if forward_on_cpu else batch * 3 * img * img * FLOAT_BYTES
    check_fits_memory(need, f"{flag} {batch} at {img} px", f"pass a smaller {flag}")


def describe_reduction(model) -> str:
    """How `model` reduces tokens, for tool output: GTP-ViT's settings or IdleViT's K per block."""
    gtp = getattr(model, "gtp", None)
    if gtp is not None:
        return f"GTP-ViT {gtp.summary()}"
    return f"K per block {','.join('-' if k is None else str(k) for k in model.keep_tokens)}"


def image_size(model) -> int:
    size = model.patch_embed.img_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def model_data_config(model) -> dict:
    """timm's eval data config for `model` at the resolution it was built for (not its pretrained default)."""
    from timm.data import resolve_data_config
    img = image_size(model)
    return resolve_data_config({"input_size": (3, img, img)}, model=model)
