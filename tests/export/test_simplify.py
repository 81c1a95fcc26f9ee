"""onnxslim vs Polygraphy constant folding: both must keep the outputs; auto keeps the smaller graph."""
import numpy as np
import pytest
import torch

from idlevit.export.onnx_export import _to_onnx_proto, _trace_inputs
from idlevit.export.simplify import SimplifyError, simplify_onnx
from idlevit.export import simplify as simplify_mod
from idlevit.factory import create_idlevit


@pytest.fixture(scope="module")
def raw_proto():
    model, _ = create_idlevit("test_vit", 0.5, img_size=64, warn_random=False)
    dummy = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return _to_onnx_proto(*_trace_inputs(model, dummy, False), 18, "torchscript"), dummy.numpy()


def test_auto_measures_both_and_keeps_the_smaller_equivalent_graph(raw_proto):
    proto, probe = raw_proto
    simplified, report = simplify_onnx(proto, "auto", probe=probe)
    by_name = {c.method: c for c in report.candidates}
    assert set(by_name) == {"onnxslim", "polygraphy"}
    for c in by_name.values():
        assert c.equivalent and c.max_abs_diff <= 1e-5
        assert c.nodes < report.nodes_before            # folding removed something
    best = min(by_name.values(), key=lambda c: (c.nodes, c.bytes))
    assert report.chosen == best.method
    assert len(simplified.graph.node) == best.nodes
    assert [o.name for o in simplified.graph.output] == ["logits"]


def test_none_returns_the_model_untouched(raw_proto):
    proto, _ = raw_proto
    same, report = simplify_onnx(proto, "none")
    assert same is proto and report.chosen == "none" and report.candidates == []


def test_a_simplifier_that_changes_outputs_is_refused(raw_proto, monkeypatch):
    proto, probe = raw_proto

    def breaks_it(model):
        import copy
        from onnx import numpy_helper
        model = copy.deepcopy(model)
        init = max(model.graph.initializer, key=lambda i: np.prod(i.dims))    # the biggest weight
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 3.0, init.name))
        return model
    monkeypatch.setitem(simplify_mod.SIMPLIFY_FUNCS, "onnxslim", breaks_it)
    with pytest.raises(SimplifyError, match="changed the outputs"):
        simplify_onnx(proto, "onnxslim", probe=probe)
