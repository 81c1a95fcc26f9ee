"""GTP-ViT against the authors' own eval forward (their `models_v3.py`, run from $IDLEVIT_GTP_AUTHORS_SRC):
one DeiT state dict loaded strictly into both, scikit-image photographs, several settings; and the exported
DeiT-S file on ONNX Runtime against the same forward at batch 1, 3 and 7. Skipped when the variable is unset."""
import numpy as np
import pytest
import timm
import torch

from idlevit.factory import create_idlevit, model_data_config
from idlevit.images import eval_transform
from idlevit.runtime.inputs import BUNDLED_PHOTOS, photos_array

from .gtp_authors import SKIP_REASON, authors_model, authors_source_path

pytestmark = pytest.mark.skipif(authors_source_path() is None, reason=SKIP_REASON)

SETTINGS = {   # (num_prop, num_neighbours, alpha, graph, token_scale)
    "small": [(8, 8, 0.1, "mixed", True),                          # the defaults
              (4, 8, 0.1, "spatial", False),                       # the authors' one DeiT-S command
              ([4] * 6 + [10] * 6, 5, 0.4, "semantic", True)],
    "base": [(4, 8, 0.4, "mixed", True),                           # the authors' DeiT-B table, P = 4
             (8, 8, 0.1, "semantic", False)],
}
CASES = [(size, s) for size, settings in SETTINGS.items() for s in settings]


@pytest.fixture(scope="module")
def deit_state_files(tmp_path_factory):
    """One seeded DeiT state dict per size, saved as a DeiT release checkpoint ({'model': state dict})."""
    files = {}
    for size in SETTINGS:
        torch.manual_seed(0)
        path = tmp_path_factory.mktemp("deit") / f"deit_{size}.pth"
        torch.save({"model": timm.create_model(f"deit_{size}_patch16_224").state_dict()}, path)
        files[size] = str(path)
    return files


def _both(size, setting, ckpt):
    num_prop, k, alpha, graph, scales = setting
    ours, _ = create_idlevit(f"gtp_deit_{size}_patch16_224", ckpt=ckpt, num_prop=num_prop, num_neighbours=k,
                             alpha=alpha, graph_type=graph, token_scale=scales)
    theirs = authors_model(size, num_prop, k, alpha, graph, scales)
    theirs.load_state_dict(torch.load(ckpt, weights_only=True)["model"], strict=True)
    return ours, theirs


@pytest.mark.parametrize("size, setting", CASES, ids=[f"{s}-{i}" for s, i in
                                                      [(s, i) for s in SETTINGS for i in range(len(SETTINGS[s]))]])
def test_eval_forward_equals_the_authors_on_photos(deit_state_files, size, setting):
    ours, theirs = _both(size, setting, deit_state_files[size])
    x = torch.from_numpy(photos_array(eval_transform(model_data_config(ours)), BUNDLED_PHOTOS[:4]))
    with torch.no_grad():
        got, want = ours(x), theirs(x)
    print(f"deit_{size} {setting}: max abs diff {(got - want).abs().max().item():.2e}")
    assert (got - want).abs().max().item() <= 1e-4
    assert torch.equal(got.argmax(1), want.argmax(1))


def test_exported_deit_s_on_onnx_runtime_equals_the_authors(deit_state_files, tmp_path):
    from idlevit.cli.export import main as idle_export
    from idlevit.runtime.ort_runner import OrtRunner
    path = tmp_path / "gtp_deit_s.onnx"
    assert idle_export(["--model", "gtp_deit_small_patch16_224", "--ckpt", deit_state_files["small"],
                        "-o", str(path)]) == 0
    _, theirs = _both("small", SETTINGS["small"][0], deit_state_files["small"])
    transform = eval_transform(model_data_config(timm.create_model("deit_small_patch16_224")))
    photos = photos_array(transform, BUNDLED_PHOTOS[:7])
    with OrtRunner(str(path)) as runner:
        for batch in (1, 3, 7):
            got = runner.infer(photos[:batch])["logits"]
            with torch.no_grad():
                want = theirs(torch.from_numpy(photos[:batch])).numpy()
            print(f"ONNX Runtime vs authors, batch {batch}: max abs diff {np.abs(got - want).max():.2e}")
            assert np.abs(got - want).max() <= 1e-4
            assert np.array_equal(got.argmax(1), want.argmax(1))
