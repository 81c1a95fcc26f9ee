"""export_onnx: the DeiT-S graph (9 TopK, 9 row ScatterND, no NonZero, static shapes), the r=1.0 baseline, both
exporters, metadata, and refusals that leave no file behind."""
import os

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from timm.models.vision_transformer import VisionTransformer

from idlevit.errors import UserError
from idlevit.export import check_tensorrt_compat
from idlevit.factory import create_idlevit
from idlevit.models import make_idle
from idlevit.onnx_file.metadata import read_metadata
from idlevit.workflows.export import export_model, forward_check
from tests.onnx_cache import DEIT_S_07, DEIT_T_07_TS, TEST_VIT_05, TEST_VIT_10, THREADS, export_config


@pytest.fixture(scope="module")
def deit_s(tmp_path_factory):
    return export_config(tmp_path_factory, DEIT_S_07)


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_deit_s_graph_has_nine_sorted_topk_and_row_scatters(deit_s):
    model = onnx.load(deit_s)
    ops = [n.op_type for n in model.graph.node]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    topk = [n for n in model.graph.node if n.op_type == "TopK"]
    assert len(topk) == 9
    assert [int(inits[n.input[1]].reshape(-1)[0]) for n in topk] == [137] * 3 + [96] * 3 + [67] * 3
    for node in topk:
        assert _attrs(node).get("sorted", 1) == 1 and _attrs(node).get("largest", 1) == 1
        assert _attrs(node).get("axis", -1) == -1
    assert "NonZero" not in ops
    # whole-row Gathers and one whole-row ScatterND per idle block, no element-wise GatherElements/ScatterElements
    assert ops.count("ScatterND") == 9 and "GatherElements" not in ops and "ScatterElements" not in ops
    for node in model.graph.node:
        if node.op_type == "ScatterND":
            assert "reduction" not in _attrs(node)
    # every attention's k^T is one Transpose (the dynamo exporter's Reshape -> Transpose -> Reshape rewritten)
    perms = [_attrs(n)["perm"] for n in model.graph.node if n.op_type == "Transpose"]
    assert perms.count([0, 1, 3, 2]) == 12
    report = check_tensorrt_compat(model, expected_topk=9)
    assert report.ok, report.summary()
    assert report.dynamic_dims == ["batch"]      # symbolic inference: every other dim is static


def test_deit_s_io_names_and_only_batch_dynamic(deit_s):
    model = onnx.load(deit_s)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "logits"
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(inp) == ["batch", 3, 224, 224]
    assert dims(out) == ["batch", 1000]


def test_deit_s_metadata(deit_s):
    meta = read_metadata(deit_s)
    assert meta.model_name == "idlevit_deit_small_patch16_224"
    assert meta.keep_tokens == [None] * 3 + [137] * 3 + [96] * 3 + [67] * 3
    assert meta.keep_ratio == pytest.approx(0.7) and meta.keep_ratios[3:6] == [0.7] * 3
    assert meta.img_size == 224 and meta.num_classes == 1000
    assert meta.mean == pytest.approx([0.485, 0.456, 0.406]) and meta.std == pytest.approx([0.229, 0.224, 0.225])
    assert meta.exporter == "dynamo" and meta.torch_version == torch.__version__ and meta.opset == 18
    assert meta.seed == 0 and meta.ckpt_sha256 is None
    assert meta.simplifier == "onnxslim" and meta.precision == "fp32"
    props = {p.key for p in onnx.load(deit_s, load_external_data=False).metadata_props}
    assert {"model_name", "keep_ratios", "keep_tokens", "img_size", "mean", "std", "exporter", "torch_version",
            "seed"} <= props
    assert "ckpt_sha256" not in props                # seeded weights: the seed is recorded instead


def test_keep_ratio_one_exports_no_topk(tmp_path_factory):
    model = onnx.load(export_config(tmp_path_factory, TEST_VIT_10))
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"TopK", "GatherElements", "ScatterElements", "ScatterND"}
    assert read_metadata(model).keep_tokens == [None] * 6


def test_torchscript_exporter_matches_pytorch(tmp_path_factory):
    path = export_config(tmp_path_factory, DEIT_T_07_TS)
    model = onnx.load(path)
    assert sum(n.op_type == "TopK" for n in model.graph.node) == 9
    assert not {n.op_type for n in model.graph.node} & {"If", "Loop", "NonZero", "ScatterElements"}
    assert sum(n.op_type == "ScatterND" and not n.attribute for n in model.graph.node) == 9   # no reduction
    assert check_tensorrt_compat(model, expected_topk=9).ok
    assert read_metadata(model).exporter == "torchscript"
    ref, _ = create_idlevit(DEIT_T_07_TS[0], 0.7, seed=0, warn_random=False)
    checks = forward_check(ref, path, 224, [1, 2, 7], threads=THREADS)
    assert all(c.max_abs_diff <= 1e-4 and c.top1_agreement == 1.0 for c in checks), checks


def test_selection_outputs_flag(tmp_path):
    model, source = create_idlevit("test_vit", 0.5, img_size=64, warn_random=False)
    path = str(tmp_path / "sel.onnx")
    export_model(model, "test_vit", source, path, exporter="torchscript", selection_outputs=True, check_forward=False)
    outs = [o.name for o in onnx.load(path).graph.output]
    assert outs == ["logits"] + [f"topk_indices.{i}" for i in range(4)]


def _tiny(keep_ratio=0.99, img_size=128, patch_size=2):
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=img_size, patch_size=patch_size, embed_dim=16, depth=4, num_heads=2,
                            num_classes=10)
    return make_idle(vit, keep_ratio).eval()


def test_refuses_k_above_tensorrt_limit(tmp_path):
    model = _tiny()                                   # 4096 image tokens, K = 4055 in block 1
    assert max(k for k in model.keep_tokens if k) > 3840
    from idlevit.factory import ModelSource
    with pytest.raises(UserError, match="above TensorRT's TopK limit of 3840"):
        export_model(model, "tiny", ModelSource("tiny", seed=0), str(tmp_path / "m.onnx"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kwargs,match", [({"batch": 1}, "batch 1 < 2"), ({"opset": 16}, "opset 16"),
                                          ({"exporter": "jit"}, "unknown exporter"),
                                          ({"simplify": "magic"}, "unknown simplifier")])
def test_refuses_bad_arguments(tmp_path, kwargs, match):
    from idlevit.factory import ModelSource
    with pytest.raises(UserError, match=match):
        export_model(_tiny(0.5, img_size=32, patch_size=8), "tiny", ModelSource("tiny", seed=0),
                     str(tmp_path / "m.onnx"), **kwargs)
    assert os.listdir(tmp_path) == []


def test_test_vit_export_runs_any_batch(tmp_path_factory):
    """The dynamic batch really is dynamic: batch 1 and an odd batch run after a batch-2 trace."""
    import onnxruntime as ort
    sess = ort.InferenceSession(export_config(tmp_path_factory, TEST_VIT_05), providers=["CPUExecutionProvider"])
    for b in (1, 5):
        (out,) = sess.run(None, {"input": np.zeros((b, 3, 64, 64), np.float32)})
        assert out.shape == (b, 1000)
