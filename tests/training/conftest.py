"""Tiny fine-tuning settings for the training tests: a 4-block, 16-token ViT on 32 px synthetic images."""
import pytest
import torch

from idlevit.training import TrainConfig

TINY_MODEL = dict(model="deit_tiny_patch16_224", img_size=32,
                  model_kwargs=dict(patch_size=8, embed_dim=32, depth=4, num_heads=2))


def tiny_config(output, **overrides) -> TrainConfig:
    """CPU, no workers, no progress bars, small seeded synthetic data; override anything."""
    values = dict(TINY_MODEL, synthetic=True, synthetic_size=256, synthetic_val_size=128, workers=0,
                  progress=False, batch_size=32, lr=3e-3, min_lr=1e-4, drop_path=0.0, no_aug=True,
                  keep_ratio=0.5, output=str(output))
    values.update(overrides)
    return TrainConfig(**values)


def tiny_cli_args(output, *extra):
    """The same tiny settings as idle-train flags."""
    return ["--synthetic", "--model", "deit_tiny_patch16_224", "--img-size", "32", "--model-kwargs", "patch_size=8",
            "embed_dim=32", "depth=4", "num_heads=2", "--synthetic-size", "256", "--synthetic-val-size", "64",
            "--workers", "0", "--no-progress", "-b", "32", "--no-aug", "--drop-path", "0", "-o", str(output), *extra]


@pytest.fixture(autouse=True)
def _one_thread():
    # pytest -n 2 on 2 cores: one thread per worker avoids oversubscription
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
