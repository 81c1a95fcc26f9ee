"""TorchRunner: load, infer (with selection outputs), the keep ratio per call, refusals, close."""
import numpy as np
import pytest
import torch

from idlevit.errors import UserError
from idlevit.runtime.runner import make_runner
from tests.conftest import tiny_vit


def test_torch_runner_with_selection_and_threads():
    model = tiny_vit(0.5)
    x = torch.randn(3, 3, 32, 32)
    before = torch.get_num_threads()
    with make_runner("torch", model=model, selection=True, threads=1) as r:
        assert torch.get_num_threads() == 1
        out = r.infer(x.numpy())
        assert r.output_names == ("logits", "topk_indices.0", "topk_indices.1", "topk_indices.2")
        assert r.describe()["threads"] == 1
    assert torch.get_num_threads() == before              # restored on close
    with torch.no_grad():
        assert np.allclose(out["logits"], model(x).numpy(), atol=1e-6)
    assert out["topk_indices.0"].shape == (3, 8)          # 16 tokens, r = 0.5


@pytest.mark.parametrize("kwargs,match", [({"fp16": True}, "fp16 autocast runs on CUDA only: drop --autocast fp16"),
                                          ({"device": "tpu"}, "unknown device")])
def test_torch_runner_refusals(kwargs, match):
    with pytest.raises(UserError, match=match):
        make_runner("torch", model=tiny_vit(), **kwargs).load()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_torch_runner_without_cuda():
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        make_runner("torch", model=tiny_vit(), device="cuda").load()




def test_torch_runner_keep_ratio_per_call_matches_the_model_at_that_ratio():
    model = tiny_vit(0.5)
    x = torch.randn(2, 3, 32, 32)
    with make_runner("torch", model=model) as r:
        at_075 = r.infer(x.numpy(), keep_ratio=0.75)["logits"]
        default = r.infer(x.numpy())["logits"]
    with torch.no_grad():
        assert np.allclose(default, model(x).numpy(), atol=1e-6)         # the model's own ratio afterwards
        model.set_keep_ratio(0.75)
        assert np.allclose(at_075, model(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("ratio", [0.0, 1.5])
def test_torch_runner_refuses_a_keep_ratio_outside_0_1(ratio):
    with make_runner("torch", model=tiny_vit(0.5)) as r, pytest.raises(UserError, match="keep ratio"):
        r.infer(np.zeros((1, 3, 32, 32), np.float32), keep_ratio=ratio)


def test_torch_runner_on_a_plain_vit_has_a_fixed_keep_ratio():
    from timm.models.vision_transformer import VisionTransformer
    plain = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10).eval()
    with make_runner("torch", model=plain) as r, pytest.raises(UserError, match="fixed keep ratio"):
        r.set_keep_ratio(0.5)


def test_torch_runner_after_close_is_not_loaded():
    r = make_runner("torch", model=tiny_vit(0.5)).load()
    r.close()
    assert not r.is_loaded
    with pytest.raises(RuntimeError, match="not loaded"):
        r.infer(np.zeros((1, 3, 32, 32), np.float32))
