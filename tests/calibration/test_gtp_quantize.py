"""INT8 Q/DQ of a GTP-ViT file: idle-calibrate quantizes the weight GEMMs only (the attention logits that score
tokens, the token graph and the propagation stay float) and idle-runtime parity --precision int8 passes."""
import json

import onnx
import pytest

from idlevit.calibration.quantize import nodes_to_exclude
from idlevit.calibration.options import QuantizeOptions
from idlevit.cli.calibrate import main as idle_calibrate
from idlevit.cli.runtime import main as idle_runtime
from idlevit.export import check_tensorrt_compat
from idlevit.onnx_file.selection_path import activation_matmuls
from tests.export.test_gtp_export import _export


@pytest.fixture(scope="module")
def gtp_files(tmp_path_factory, photo_folder):
    folder = tmp_path_factory.mktemp("gtp_int8")
    path = _export(folder, "gtp.onnx", ["num_prop=2", "num_neighbours=3"])
    qdq = str(folder / "gtp.qdq.onnx")
    assert idle_calibrate(["--onnx", path, "--images", photo_folder, "-o", str(folder / "calib.npz"),
                           "--qdq-output", qdq, "--quantizer", "ort", "--no-progress"]) == 0
    return path, qdq


def test_weight_gemms_are_int8_and_the_gtp_path_stays_float(gtp_files):
    fp32, qdq = onnx.load(gtp_files[0]), onnx.load(gtp_files[1])
    selection, excluded = nodes_to_exclude(fp32, QuantizeOptions())
    by_name = {n.name: n for n in fp32.graph.node}
    path_ops = [by_name[n].op_type for n in selection]
    # the semantic graph's similarity, 4 attention logits, 2 propagation MatMuls per block (features and token
    # scales; the last block's scales are never read again, so that one is not exported); every TopK (4 blocks +
    # the graph's neighbour threshold)
    assert path_ops.count("MatMul") == len(activation_matmuls(fp32)) == 1 + 4 + 4 * 2 - 1
    assert path_ops.count("TopK") == 5
    inits = {t.name for t in qdq.graph.initializer}
    producer = {t: n for n in qdq.graph.node for t in n.output}
    dq_out = {n.output[0] for n in qdq.graph.node if n.op_type == "DequantizeLinear"}
    gemms = [n for n in qdq.graph.node if n.op_type in ("MatMul", "Gemm", "Conv")]
    for node in gemms:
        weight = any(t in inits or producer.get(t) is not None and producer[t].input[0] in inits for t in node.input)
        reads_int8 = bool(set(node.input) & dq_out)
        assert reads_int8 == (weight and node.name not in excluded), (node.name, node.op_type)
    assert sum(bool(set(n.input) & dq_out) for n in gemms) == 1 + 4 * 4 + 1   # patch embed, qkv/proj/fc1/fc2, head
    for node in qdq.graph.node:
        if node.name in set(selection):
            assert not set(node.input) & dq_out, f"{node.name} ({node.op_type}) reads a dequantized tensor"
    report = check_tensorrt_compat(qdq, expected_topk=5)
    assert report.ok, report.issues


def test_int8_parity_against_pytorch(gtp_files, capsys):
    # measured (onnxruntime 1.32, tiny random model, 64 seeded random inputs): cosine mean 0.9983, min 0.981,
    # top-1 0.92 (its 5 flips are near-ties: reference margin <= 0.15 logit std)
    capsys.readouterr()
    argv = ["parity", "--onnx", gtp_files[1], "--precision", "int8", "--json"]
    assert idle_runtime(argv + ["--min-cosine", "0.995", "--min-top1", "0.8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "int8" and report["samples"] == 64 and report["passed"]
    assert report["cosine_mean"] >= 0.995 and report["cosine_min"] > 0.95 and report["top1_agreement"] >= 0.8
    assert report["max_abs_diff"] > 1e-4                       # the file really runs int8 GEMMs
    assert idle_runtime(argv + ["--min-top1", "1.0"]) == 1     # and its limits can fail
