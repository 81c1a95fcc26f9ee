"""A GTP-ViT file deploys like an IdleViT one: `idle-deploy triton` writes both models and the python model's
runner serves the file's own logits."""
import numpy as np

from idlevit.cli.deploy import main as idle_deploy
from idlevit.cli.export import main as idle_export
from idlevit.runtime.ort_runner import OrtRunner
from idlevit.serving.served_model import serve_files


def test_triton_repository_and_served_logits(tmp_path):
    path = str(tmp_path / "gtp.onnx")
    assert idle_export(["--model", "gtp_deit_tiny_patch16_224", "--img-size", "32", "--num-classes", "10",
                        "--model-kwargs", "depth=4", "embed_dim=32", "num_heads=2", "patch_size=8", "num_prop=2",
                        "--no-check-forward", "-o", path]) == 0
    repo = tmp_path / "repo"
    assert idle_deploy(["triton", "--onnx-files", path, "-o", str(repo)]) == 0
    assert (repo / "idlevit_onnx" / "1" / "model.onnx").exists() and (repo / "idlevit" / "1" / "model.py").exists()
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    served = serve_files({"": str(repo / "idlevit" / "1" / "model.onnx")})
    try:
        assert served.ratios == [1.0]                     # GTP-ViT has no keep ratio: the file serves as it is
        got = served.infer(x, 1.0)["logits"]
    finally:
        served.close()
    with OrtRunner(path) as runner:
        np.testing.assert_array_equal(got, runner.infer(x)["logits"])
