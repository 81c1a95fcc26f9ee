"""ONNX exports shared by every test of one pytest session (and across xdist workers): each is built once."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from filelock import FileLock

# (model name, keep ratio, img size, exporter) -> cache name; the DeiT-S/T ones are the CI parity set
DEIT_S_07 = ("idlevit_deit_small_patch16_224", 0.7, 224, "dynamo")
DEIT_S_05 = ("idlevit_deit_small_patch16_224", 0.5, 224, "dynamo")
DEIT_T_07 = ("idlevit_deit_tiny_patch16_224", 0.7, 224, "dynamo")
DEIT_T_05 = ("idlevit_deit_tiny_patch16_224", 0.5, 224, "dynamo")
DEIT_T_07_TS = ("idlevit_deit_tiny_patch16_224", 0.7, 224, "torchscript")
LVVIT_S_07 = ("idlevit_lvvit_s", 0.7, 224, "dynamo")    # the paper's second backbone, in CI
# timm's 6-block test ViT at 64 px (16 image tokens): the cheap graph for CLI and unit tests
TEST_VIT_05 = ("test_vit", 0.5, 64, "dynamo")
TEST_VIT_10 = ("test_vit", 1.0, 64, "dynamo")
# the same weights as one elastic file (keep ratio chosen per call, 0.5 by default)
TEST_VIT_ELASTIC = ("test_vit", 0.5, 64, "dynamo", "elastic")


# pytest runs two workers on two cores: one thread each (two would oversubscribe and spin)
THREADS = 1


def shared_dir(tmp_path_factory) -> Path:
    """A folder every xdist worker of this session sees (the session's own basetemp without xdist)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(exist_ok=True)
    return root


def cached(tmp_path_factory, name: str, build: Callable[[str], None]) -> str:
    """Path of `name` in the shared folder, built by `build(path)` the first time anyone asks."""
    path = shared_dir(tmp_path_factory) / name
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            build(str(path))
    return str(path)


def export_config(tmp_path_factory, config) -> str:
    """Cached ONNX export of (model, keep ratio, img size, exporter[, "elastic"]) with seed-0 weights."""
    model_name, keep_ratio, img_size, exporter, *flags = config
    elastic = "elastic" in flags

    def build(path):
        from idlevit.workflows.export import export_model
        from idlevit.factory import create_idlevit
        model, source = create_idlevit(model_name, keep_ratio, img_size=img_size, seed=0, warn_random=False)
        export_model(model, model_name, source, path, exporter=exporter, threads=THREADS, elastic=elastic)
    suffix = "_elastic" if elastic else ""
    return cached(tmp_path_factory, f"{model_name}_r{keep_ratio}_{img_size}_{exporter}{suffix}.onnx", build)


def photos_dir(tmp_path_factory) -> str:
    """scikit-image's bundled photographs written as PNG files."""
    def build(path):
        from idlevit.runtime.inputs import write_bundled_photos
        write_bundled_photos(path + ".tmp")
        os.replace(path + ".tmp", path)
    return cached(tmp_path_factory, "photos", build)
