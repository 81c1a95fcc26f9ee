"""create_idlevit: every model through the timm registry, seeded weights, one-line errors, size checks."""
import warnings

import pytest
import timm
import torch

from idlevit.errors import UserError
from idlevit.factory import (check_batch_fits, check_build_args, create_idlevit, forward_bytes, image_size,
                             model_data_config)
from idlevit.models import IdleViTMixin

TINY = dict(img_size=32, depth=4, warn_random=False)   # deit-tiny width, 4 blocks, 4 image tokens


@pytest.fixture
def registry_calls(monkeypatch):
    """Names `timm.create_model` is asked for while the factory builds."""
    calls = []
    real = timm.create_model

    def spy(name, *args, **kwargs):
        calls.append(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(timm, "create_model", spy)
    return calls


def test_idlevit_name_is_built_by_the_registry(registry_calls):
    model, source = create_idlevit("idlevit_deit_tiny_patch16_224", keep_ratio=0.5, **TINY)
    assert registry_calls[-2:] == ["idlevit_deit_tiny_patch16_224", "deit_tiny_patch16_224"]
    assert isinstance(model, IdleViTMixin) and not model.training
    assert model.keep_ratios == [1.0, 0.5, 0.25, 0.125] and model.keep_tokens == [None, 2, 1, 1]
    assert source.keep_ratios == model.keep_ratios and source.seed == 0 and source.ckpt is None


def test_plain_timm_name_is_registered_once_and_built_the_same_way(registry_calls):
    model, _ = create_idlevit("vit_tiny_patch16_224", keep_ratio=0.5, **TINY)
    assert "idlevit_vit_tiny_patch16_224" in registry_calls
    assert timm.is_model("idlevit_vit_tiny_patch16_224") and isinstance(model, IdleViTMixin)
    again, _ = create_idlevit("vit_tiny_patch16_224", keep_ratio=0.5, **TINY)   # no second registration
    assert type(again) is type(model)


def test_same_seed_same_weights_other_seed_other_weights():
    a, _ = create_idlevit("idlevit_deit_tiny_patch16_224", seed=3, **TINY)
    b, _ = create_idlevit("idlevit_deit_tiny_patch16_224", seed=3, **TINY)
    c, _ = create_idlevit("idlevit_deit_tiny_patch16_224", seed=4, **TINY)
    w = "blocks.0.attn.qkv.weight"
    assert torch.equal(a.state_dict()[w], b.state_dict()[w])
    assert not torch.equal(a.state_dict()[w], c.state_dict()[w])


def test_explicit_ratios_win_over_the_base_ratio():
    model, _ = create_idlevit("idlevit_deit_tiny_patch16_224", keep_ratio=0.5, keep_ratios=[1.0, 1.0, 0.5, 0.5],
                              **TINY)
    assert model.keep_ratios == [1.0, 1.0, 0.5, 0.5]


@pytest.mark.parametrize("kwargs,needle", [
    (dict(keep_ratio=1.5), r"keep ratio 1.5 is outside \(0, 1\]"),
    (dict(keep_ratios=[1.0, 0.0, 0.5, 0.5]), r"per-block keep ratio 0 is outside \(0, 1\]"),
    (dict(keep_ratios=[1.0, 0.5]), "cannot build idlevit_deit_tiny_patch16_224: keep_ratios has 2 entries"),
])
def test_bad_schedule_is_one_user_error(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        create_idlevit("idlevit_deit_tiny_patch16_224", **{**TINY, **kwargs})


def test_unknown_and_unsupported_models_are_refused():
    with pytest.raises(UserError, match="unknown model 'idlevit_nothing'"):
        create_idlevit("idlevit_nothing", **TINY)
    with pytest.raises(UserError, match=r"cannot build vit_tiny_patch16_224: .*one \[CLS\] token"):
        create_idlevit("vit_tiny_patch16_224", class_token=False, global_pool="avg", **TINY)


def test_random_weights_warn_unless_told_not_to():
    with pytest.warns(UserWarning, match="seeded random weights"):
        create_idlevit("idlevit_deit_tiny_patch16_224", img_size=32, depth=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_idlevit("idlevit_deit_tiny_patch16_224", **TINY)


def test_build_args_are_checked_before_building():
    with pytest.raises(UserError, match="--img-size 33 is not a multiple of the patch size 16"):
        check_build_args("idlevit_deit_tiny_patch16_224", img_size=33)
    with pytest.raises(UserError, match="model argument qkv_bias='no' is not True or False"):
        check_build_args("idlevit_deit_tiny_patch16_224", qkv_bias="no")
    check_build_args("idlevit_deit_tiny_patch16_224", img_size=64, depth=2)   # fine: no error


def test_sizes_follow_the_built_model():
    model, _ = create_idlevit("idlevit_deit_tiny_patch16_224", **TINY)
    assert image_size(model) == 32 and model_data_config(model)["input_size"] == (3, 32, 32)
    assert forward_bytes(model, batch=4) > forward_bytes(model, batch=1) > 0
    with pytest.raises(UserError, match="-b/--batch-size 0 must be at least 1"):
        check_batch_fits(model, 0)
