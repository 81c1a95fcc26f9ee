"""Rebuilding the PyTorch reference from ONNX metadata; flags that disagree are one-line errors."""
import pytest
import torch

from idlevit.errors import UserError
from idlevit.export import metadata_for
from idlevit.factory import create_idlevit
from idlevit.runtime.reference import baseline_of, reference_from_metadata


@pytest.fixture(scope="module")
def seeded():
    model, source = create_idlevit("test_vit", 0.5, img_size=64, seed=3, warn_random=False)
    return model, metadata_for(model, "test_vit", seed=3)


def test_rebuilds_the_same_weights(seeded):
    model, meta = seeded
    ref, source = reference_from_metadata(meta, "m.onnx", warn_random=False)
    assert source.seed == 3 and ref.keep_tokens == model.keep_tokens
    for (k, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(a, b), k


def test_matching_flags_are_accepted(seeded):
    _, meta = seeded
    ref, _ = reference_from_metadata(meta, "m.onnx", model="test_vit", keep_ratio=0.5, img_size=64, seed=3,
                                     warn_random=False)
    assert ref.keep_ratios == meta.keep_ratios


@pytest.mark.parametrize("flags,match", [
    ({"model": "idlevit_deit_tiny_patch16_224"}, "--model idlevit_deit_tiny_patch16_224 does not match m.onnx, "
                                                 "exported with test_vit"),
    ({"keep_ratio": 0.7}, r"--keep-ratio 0.7 \(K per block -,-,11,7,5,5\) does not match"),
    ({"img_size": 32}, "--img-size 32 does not match"),
    ({"num_classes": 10}, "--num-classes 10 does not match"),
    ({"seed": 4}, "--seed 4 does not match"),
    ({"ckpt": "x.pth"}, "exported from seeded random weights"),
])
def test_disagreeing_flags_are_errors(seeded, flags, match):
    _, meta = seeded
    with pytest.raises(UserError, match=match) as err:
        reference_from_metadata(meta, "m.onnx", warn_random=False, **flags)
    assert "\n" not in str(err.value)


def test_checkpoint_exports_need_the_same_checkpoint(seeded, tmp_path):
    model, meta = seeded
    ckpt = tmp_path / "w.pth"
    torch.save(model.state_dict(), ckpt)
    from idlevit.fileio import file_sha256
    meta = metadata_for(model, "test_vit", ckpt_sha256=file_sha256(str(ckpt)))
    with pytest.raises(UserError, match="pass that file with --ckpt"):
        reference_from_metadata(meta, "m.onnx")
    ref, source = reference_from_metadata(meta, "m.onnx", ckpt=str(ckpt))
    assert source.ckpt_sha256 == meta.ckpt_sha256
    other = tmp_path / "other.pth"
    state = model.state_dict()
    state["head.bias"] = state["head.bias"] + 1
    torch.save(state, other)
    with pytest.raises(UserError, match="is not the one m.onnx was exported from"):
        reference_from_metadata(meta, "m.onnx", ckpt=str(other))


def test_baseline_of_keeps_weights_and_drops_idling(seeded):
    model, _ = seeded
    base = baseline_of(model)
    assert all(k is None for k in base.keep_tokens) and model.keep_tokens != base.keep_tokens
    assert torch.equal(base.head.weight, model.head.weight) and base.head.weight is not model.head.weight
