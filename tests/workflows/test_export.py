"""export_model: the forward check runs on the written file before it is renamed into place."""
import os

import pytest

from idlevit.export import ExportCheckError
from idlevit.export.onnx_export import ForwardCheck
from idlevit.factory import ModelSource
from idlevit.workflows import export as export_workflow
from idlevit.workflows.export import export_model
from tests.conftest import tiny_vit


def test_failed_forward_check_leaves_no_file(tmp_path, monkeypatch):
    bad = [ForwardCheck(batch=1, max_abs_diff=0.5, top1_agreement=0.0)]
    monkeypatch.setattr(export_workflow, "forward_check", lambda *a, **k: bad)
    with pytest.raises(ExportCheckError, match="max abs diff 5.00e-01"):
        export_model(tiny_vit(0.5), "tiny", ModelSource("tiny", seed=0), str(tmp_path / "m.onnx"),
                     exporter="torchscript")
    assert os.listdir(tmp_path) == []


def test_passing_check_is_reported_at_every_batch_and_the_file_keeps_its_name(tmp_path):
    path = str(tmp_path / "m.onnx")
    report = export_model(tiny_vit(0.5), "tiny", ModelSource("tiny", seed=0), path, exporter="torchscript",
                          check_batches=(1, 3), batch=2, threads=1)
    assert report.path == path and os.listdir(tmp_path) == ["m.onnx"]
    assert [c.batch for c in report.forward_checks] == [1, 2, 3]
    assert all(c.max_abs_diff <= 1e-4 and c.top1_agreement == 1.0 for c in report.forward_checks)
