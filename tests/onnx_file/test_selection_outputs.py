"""TopK indices exposed as graph outputs agree with the PyTorch reference selection."""
import numpy as np
import onnx
import pytest
import torch

from idlevit.onnx_file.selection_outputs import add_selection_outputs
from idlevit.onnx_file.selection_outputs import selection_from_torch
from idlevit.factory import create_idlevit
from idlevit.runtime.ort_runner import OrtRunner
from tests.onnx_cache import TEST_VIT_05, export_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_config(tmp_path_factory, TEST_VIT_05)


def test_outputs_added_in_block_order_with_their_k(exported):
    model, names = add_selection_outputs(onnx.load(exported))
    assert names == [f"topk_indices.{i}" for i in range(4)]
    outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert [outs[n] for n in names] == [["batch", 8], ["batch", 4], ["batch", 2], ["batch", 2]]   # 16 tokens, r=0.5
    again, names2 = add_selection_outputs(model)
    assert names2 == names and len(again.graph.output) == len(model.graph.output)    # idempotent
    onnx.checker.check_model(model)


def test_ort_selection_equals_torch_selection(exported):
    ref, _ = create_idlevit("test_vit", 0.5, img_size=64, warn_random=False)
    x = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits, indices = ref.forward_with_selection(x)
    expected = selection_from_torch(indices)
    with OrtRunner(exported, selection=True, threads=1) as runner:
        out = runner.infer(x.numpy())
    assert np.abs(out["logits"] - logits.numpy()).max() <= 1e-4
    for i, idx in enumerate(expected):
        got = out[f"topk_indices.{i}"]
        assert got.shape == idx.shape
        assert all(set(a) == set(b) for a, b in zip(got, idx))
        assert (got >= 0).all() and (got < 16).all()     # 0-based over the image tokens, [CLS] excluded
