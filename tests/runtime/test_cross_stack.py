"""Files cross stacks: ONNX files exported here run on another ONNX Runtime, with nothing but numpy beside it.

Triton's onnxruntime backend (25.11-26.06: ONNX Runtime 1.23.2-1.24.4) loads our files with its own runtime
and no idlevit. $IDLEVIT_OTHER_ORT_PYTHON names an interpreter that has only onnxruntime and numpy; CI
builds one with ONNX Runtime 1.23.2 for the default job (newest stack exports, oldest runtime runs) and
points the floor job at the default venv (floor stack exports, newest runtime runs). Skipped, with the
reason, without it; IDLEVIT_REQUIRE_OTHER_ORT=1 (set by .ci/run) makes that a failure.
"""
import json
import os
import subprocess

import numpy as np
import pytest

from idlevit.onnx_file.elastic import ElasticKeep, stage_tokens_of
from idlevit.runtime.ort_runner import OrtRunner
from tests.onnx_cache import TEST_VIT_05, TEST_VIT_ELASTIC, export_config

ATOL = 1e-5
IMAGE_TOKENS = 16      # test_vit at 64 px
# runs in the other interpreter: ONNX Runtime and numpy only, as in Triton's onnxruntime backend
RUN_THERE = """
import json, sys
import numpy as np
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
result = {"onnxruntime": ort.__version__, "numpy": np.__version__}
for path, feed_path, out_path in json.loads(sys.argv[1]):
    feed = dict(np.load(feed_path))
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], feed)[0]
    np.save(out_path, logits)
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def other_python():
    python = os.environ.get("IDLEVIT_OTHER_ORT_PYTHON")
    why = None if python else "IDLEVIT_OTHER_ORT_PYTHON is not set (CI sets it to another ONNX Runtime's python)"
    if python and not os.access(python, os.X_OK):
        why = f"IDLEVIT_OTHER_ORT_PYTHON={python} is not an executable"
    if why:
        if os.environ.get("IDLEVIT_REQUIRE_OTHER_ORT") == "1":
            pytest.fail(f"IDLEVIT_REQUIRE_OTHER_ORT=1 but {why}")
        pytest.skip(why)
    return python


def _run_there(python, jobs, tmp_path):
    """Logits of each (onnx path, feed) computed by the other interpreter, and its versions."""
    specs = []
    for n, (path, feed) in enumerate(jobs):
        feed_path, out_path = tmp_path / f"feed{n}.npz", tmp_path / f"logits{n}.npy"
        np.savez(feed_path, **feed)
        specs.append((path, str(feed_path), str(out_path)))
    done = subprocess.run([python, "-c", RUN_THERE, json.dumps(specs)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    return [np.load(out) for _, _, out in specs], versions


def test_fixed_and_elastic_files_give_the_same_logits_on_the_other_runtime(other_python, tmp_path_factory,
                                                                          tmp_path):
    import onnxruntime
    fixed = export_config(tmp_path_factory, TEST_VIT_05)
    elastic = export_config(tmp_path_factory, TEST_VIT_ELASTIC)
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64), dtype=np.float32)
    jobs = [(fixed, {"input": x})]
    jobs += [(elastic, {"input": x, **ElasticKeep.full(IMAGE_TOKENS, 0.5).feed(r)}) for r in (0.5, 0.75, 1.0)]
    here = []
    for path, feed in jobs:
        with OrtRunner(path, threads=1) as runner:
            here.append(runner.infer(feed)["logits"])
    there, versions = _run_there(other_python, jobs, tmp_path)
    assert versions["onnxruntime"] != onnxruntime.__version__, (
        f"IDLEVIT_OTHER_ORT_PYTHON runs the same ONNX Runtime {onnxruntime.__version__}: point it at another one")
    for (path, feed), a, b in zip(jobs, here, there):
        diff = float(np.abs(a - b).max())
        print(f"{os.path.basename(path)} {stage_tokens_of(feed)}: onnxruntime {onnxruntime.__version__} here, "
              f"{versions['onnxruntime']} there: max |diff| {diff:.2g}")
        assert a.shape == b.shape, (a.shape, b.shape)
        assert diff <= ATOL, f"{os.path.basename(path)} {sorted(feed)}: max |diff| {diff:.3g} > {ATOL}"
        assert (a.argmax(-1) == b.argmax(-1)).all()
    # on the other runtime too, the elastic file at r = 0.5 is the fixed r = 0.5 file
    assert float(np.abs(there[0] - there[1]).max()) <= ATOL
    # and the keep ratio changes the logits (the keep inputs are not ignored)
    assert float(np.abs(there[1] - there[3]).max()) > 1e-4
