"""Fine-tuning loop: exact resume, teacher = student's backbone, log and checkpoint contents."""
import dataclasses
import json

import pytest
import torch

from idlevit.training import train
from idlevit.training.student import build_student, build_teacher
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore:no --ckpt given")  # seeded weights on purpose


class Interrupt(Exception):
    pass


def _stop_after(epoch):
    def hook(done, record):
        if done == epoch:
            raise Interrupt
    return hook


def _comparable(history):
    return [{k: r[k] for k in ("epoch", "lr", "train", "val")} for r in history]


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path):
    # full recipe on: drop-path, RandAugment, random erasing, Mixup/CutMix, smoothing, distillation, cut loss
    common = dict(epochs=3, drop_path=0.1, no_aug=False, synthetic_size=128, synthetic_val_size=32, warmup_epochs=1)
    straight = train(tiny_config(tmp_path / "straight", **common))

    cfg = tiny_config(tmp_path / "resumed", **common)
    with pytest.raises(Interrupt):
        train(cfg, on_epoch_end=_stop_after(1))
    torch.manual_seed(1234)                      # whatever ran in between must not matter
    resumed = train(dataclasses.replace(cfg, resume=True))

    a, b = straight.student.state_dict(), resumed.student.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert _comparable(resumed.history) == _comparable(straight.history)
    lines = [json.loads(line) for line in open(tmp_path / "resumed" / "log.jsonl")]
    assert [r["epoch"] for r in lines] == [0, 1, 2, 3]
    assert straight.final["train"]["cut"] > 0 and straight.final["train"]["kl"] > 0


def test_resume_rejects_changed_settings_and_a_missing_run(tmp_path):
    from idlevit.errors import UserError
    cfg = tiny_config(tmp_path / "run", epochs=1, synthetic_size=64, synthetic_val_size=32)
    train(cfg)
    with pytest.raises(UserError, match="already holds a run"):
        train(cfg)
    with pytest.raises(UserError, match="keep_ratio is 0.5"):
        train(dataclasses.replace(cfg, resume=True, keep_ratio=0.7))
    with pytest.raises(UserError, match="nothing to resume"):
        train(dataclasses.replace(cfg, resume=True, output=str(tmp_path / "other")))


def test_checkpoint_holds_the_full_training_state(tmp_path):
    cfg = tiny_config(tmp_path / "run", epochs=1, synthetic_size=64, synthetic_val_size=32)
    train(cfg)
    state = torch.load(tmp_path / "run" / "last.pth", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "rng", "args"} <= set(state)
    assert state["epoch"] == 1 and state["args"]["keep_ratio"] == 0.5
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert "blocks.0.attn.qkv.weight" in state["model"]             # plain timm keys, no wrapper prefix


def test_deit_small_release_checkpoint_feeds_student_and_teacher(tmp_path):
    # the real shape: a DeiT-S checkpoint as released ({'model': timm keys}) builds both models unchanged
    import timm
    ckpt = tmp_path / "deit_small.pth"
    torch.manual_seed(3)
    torch.save({"model": timm.create_model("deit_small_patch16_224").state_dict()}, ckpt)
    cfg = dataclasses.replace(tiny_config(tmp_path), model="idlevit_deit_small_patch16_224", model_kwargs={},
                              img_size=None, ckpt=str(ckpt), keep_ratio=0.7)
    student, source = build_student(cfg, 1000)
    teacher = build_teacher(cfg, 1000)
    assert student.keep_tokens == [None] * 3 + [137] * 3 + [96] * 3 + [67] * 3
    assert source.ckpt_sha256 and torch.equal(student.blocks[5].mlp.fc2.weight, teacher.blocks[5].mlp.fc2.weight)
    assert student.patch_embed.img_size == (224, 224)


def test_resume_refuses_every_setting_that_changes_the_result(tmp_path):
    """docs/fine-tuning.md promises changed settings are refused: all but where the run lives and how it reports."""
    from idlevit.errors import UserError
    from idlevit.training.config import RESUME_MAY_CHANGE, resume_keys
    from idlevit.training.trainer import check_resume_args
    cfg = tiny_config(tmp_path / "run")
    saved = dataclasses.asdict(cfg)
    other = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v * 0.5 + 0.01,
             str: lambda v: v + "x", dict: lambda v: {**v, "depth": 5}, list: lambda v: v + [0.5],
             type(None): lambda v: 1}
    assert {"lr", "min_lr", "epochs", "batch_size", "seed", "ckpt", "alpha", "theta", "mixup", "workers",
            "device", "amp"} <= set(resume_keys())
    for key in resume_keys():
        changed = dataclasses.replace(cfg, **{key: other[type(saved[key])](saved[key])})
        with pytest.raises(UserError, match=f"--resume: {key} is "):
            check_resume_args(saved, changed, "last.pth")
    for key in RESUME_MAY_CHANGE:
        check_resume_args(saved, dataclasses.replace(cfg, **{key: other[type(saved[key])](saved[key])}), "last.pth")


def test_resume_with_a_changed_lr_is_refused_end_to_end(tmp_path):
    from idlevit.errors import UserError
    cfg = tiny_config(tmp_path / "run", epochs=1, synthetic_size=64, synthetic_val_size=32)
    train(cfg)
    with pytest.raises(UserError, match=r"--resume: lr is 0.003 in .*last.pth but 0.001 now"):
        train(dataclasses.replace(cfg, resume=True, lr=1e-3))


def test_checkpoints_use_the_umask_and_killed_writes_are_cleaned_on_start(tmp_path):
    import os
    import subprocess
    import sys

    from idlevit.fileio import temp_path_beside
    from idlevit.training.trainer import prepare_output
    from idlevit.training.distributed import DistEnv
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    run = tmp_path / "run"
    run.mkdir()
    stale = []
    for name in ("last.pth", "model.pth", "log.jsonl"):   # as a killed writer of each would have left them
        mine = temp_path_beside(str(run / name))
        stale.append(mine.replace(f"-{os.getpid()}-", f"-{proc.pid}-"))
        os.replace(mine, stale[-1])
    cfg = tiny_config(run, epochs=1, synthetic_size=64, synthetic_val_size=32)
    prepare_output(cfg, DistEnv())
    assert not any(os.path.exists(p) for p in stale)
    old = os.umask(0o022)
    try:
        train(cfg)
    finally:
        os.umask(old)
    for name in ("last.pth", "model.pth", "log.jsonl"):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name
    assert sorted(os.listdir(run)) == ["last.pth", "log.jsonl", "model.pth"]


# a run that SIGKILLs itself right after epoch 1's checkpoint: no cleanup, no flush, as `kill -9` would
SIGKILL_AFTER_EPOCH_1 = """
import dataclasses, json, os, signal, sys, warnings
import torch
from idlevit.training import TrainConfig, train
warnings.simplefilter("ignore")
torch.set_num_threads(1)
def hook(epoch, record):
    if epoch == 1:
        os.kill(os.getpid(), signal.SIGKILL)
train(TrainConfig(**json.loads(sys.argv[1])), on_epoch_end=hook)
"""


def _tensors_equal(a, b):
    """Deep equality of nested dicts/lists of tensors and plain values, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("activation", ["relu", "none"])
def test_projector_ensemble_run_sigkilled_after_epoch_1_resumes_bit_exact(tmp_path, activation):
    import os
    import signal
    import subprocess
    import sys

    import timm
    common = dict(epochs=3, feature_kd="projector-ensemble", beta=25.0, projectors=2, projector_act=activation,
                  drop_path=0.1, synthetic_size=96, synthetic_val_size=32, warmup_epochs=1)
    straight = train(tiny_config(tmp_path / "straight", **common))

    cfg = tiny_config(tmp_path / "resumed", **common)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SIGKILL_AFTER_EPOCH_1, json.dumps(dataclasses.asdict(cfg))],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert torch.load(tmp_path / "resumed" / "last.pth", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "resumed" / "model.pth").exists()
    resumed = train(dataclasses.replace(cfg, resume=True))

    a, b = straight.student.state_dict(), resumed.student.state_dict()
    assert _tensors_equal(a, b), "resumed weights differ from the uninterrupted run"
    assert _tensors_equal(straight.projectors.state_dict(), resumed.projectors.state_dict())
    last_a, last_b = (torch.load(tmp_path / run / "last.pth", weights_only=True) for run in ("straight", "resumed"))
    assert _tensors_equal(last_a["projectors"], last_b["projectors"])
    assert _tensors_equal(last_a["optimizer"], last_b["optimizer"])        # Adam moments of the projectors too
    assert len(last_a["optimizer"]["param_groups"]) == 4                     # student: 2 groups, projectors: 2
    assert _comparable(resumed.history) == _comparable(straight.history)

    # the log carries the feature term; the weights are the plain timm model and nothing else
    lines = [json.loads(line) for line in open(tmp_path / "resumed" / "log.jsonl")]
    assert [r["epoch"] for r in lines] == [0, 1, 2, 3]
    assert all(0 < r["train"]["feature"] < 2 for r in lines[1:])
    assert lines[3]["train"]["feature"] < lines[1]["train"]["feature"]
    weights = torch.load(tmp_path / "resumed" / "model.pth", weights_only=True)["model"]
    assert not [k for k in weights if k.startswith("projectors")]
    plain = timm.create_model("deit_tiny_patch16_224", img_size=32, num_classes=10, patch_size=8, embed_dim=32,
                              depth=4, num_heads=2)
    plain.load_state_dict(weights, strict=True)
    assert set(last_b["projectors"]) == {f"projectors.{i}.{p}" for i in range(2) for p in ("weight", "bias")}


def test_resume_refuses_a_changed_feature_term_and_reads_older_checkpoints_as_mse(tmp_path):
    from idlevit.errors import UserError
    from idlevit.training.trainer import check_resume_args
    cfg = tiny_config(tmp_path / "run")
    saved = dataclasses.asdict(cfg)
    older = {k: v for k, v in saved.items() if k not in ("feature_kd", "projectors", "projector_act")}
    check_resume_args(older, cfg, "last.pth")          # written before the flags existed: the defaults
    for change in (dict(feature_kd="projector-ensemble"), dict(projectors=4), dict(projector_act="none")):
        key = next(iter(change))
        with pytest.raises(UserError, match=f"--resume: {key} is "):
            check_resume_args(saved, dataclasses.replace(cfg, **change), "last.pth")
        with pytest.raises(UserError, match=f"--resume: {key} is "):
            check_resume_args(older, dataclasses.replace(cfg, **change), "last.pth")
