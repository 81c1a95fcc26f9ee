"""idle-train end to end on CPU: a smoke run that learns, fine-tuning from its checkpoint, and bad input."""
import json

import pytest
import torch

from idlevit.checkpoint import load_checkpoint
from idlevit.cli.train import main
from idlevit.factory import create_idlevit
from tests.training.conftest import _one_thread, tiny_cli_args  # noqa: F401  (autouse: one torch thread)

TINY_KW = dict(patch_size=8, embed_dim=32, depth=4, num_heads=2)

pytestmark = pytest.mark.filterwarnings("ignore:no --ckpt given")  # seeded weights on purpose


def _one_line_error(capsys, code, *words):
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def test_smoke_run_learns_and_its_weights_fine_tune_and_load(tmp_path, capsys):
    base = tmp_path / "base"
    # 2 epochs from scratch (no teacher worth distilling yet): CE only, IdleViT r = 0.5 student
    code = main(tiny_cli_args(base, "--synthetic-size", "2560", "--synthetic-val-size", "256", "--epochs", "2", "--lr", "3e-3", "--min-lr", "1e-4",
                              "--alpha", "0", "--beta", "0", "--theta", "0", "--smoothing", "0", "--keep-ratio", "1.0"))
    assert code == 0
    out = capsys.readouterr().out
    assert "val top-1 %" in out and "model.pth" in out
    history = [json.loads(line) for line in open(base / "log.jsonl")]
    assert history[-1]["val"]["top1"] > 20.0, history[-1]     # 10 classes: chance is 10 %

    # the weights load where idle-export loads them: plain timm keys under 'model'
    model, _ = create_idlevit("deit_tiny_patch16_224", keep_ratio=0.7, ckpt=str(base / "model.pth"), img_size=32,
                              num_classes=10, **TINY_KW)
    assert load_checkpoint(model, str(base / "model.pth"))

    # fine-tune IdleViT r = 0.5 from it with the paper's objective (distillation + cut loss, Mixup on)
    tuned = tmp_path / "tuned"
    code = main(tiny_cli_args(tuned, "--ckpt", str(base / "model.pth"), "--synthetic-val-size", "256",
                              "--epochs", "1", "--lr", "5e-4",
                              "--keep-ratio", "0.5", "--mixup", "0.8", "--cutmix", "1.0", "--mixup-prob", "1.0",
                              "--json"))
    assert code == 0
    log = [json.loads(line) for line in open(tuned / "log.jsonl")]
    report = json.loads(capsys.readouterr().out)     # --json: the same epochs as log.jsonl, and where things went
    assert [r["epoch"] for r in report["history"]] == [r["epoch"] for r in log[1:]]
    assert report["history"][-1]["val"]["top1"] == log[-1]["val"]["top1"] and report["weights"].endswith("model.pth")
    # teacher = the base weights without idling, on the same validation images: the base run's final accuracy
    assert log[0]["teacher"]["top1"] == pytest.approx(history[-1]["val"]["top1"])
    assert log[1]["train"]["kl"] > 0 and log[1]["train"]["cut"] > 0
    assert log[1]["val"]["top1"] > 15.0


def _folder(root, train=True, val=True, images=True):
    from PIL import Image
    for split, ok in (("train", train), ("val", val)):
        if not ok:
            continue
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            if images:
                Image.new("RGB", (40, 40), (10, 200, 30)).save(root / split / cls / "x.png")
    return root


def test_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint" * 10)
    code = main(tiny_cli_args(tmp_path / "run", "--ckpt", str(bad)))
    _one_line_error(capsys, code, "corrupt")
    assert not (tmp_path / "run" / "last.pth").exists()


def test_mismatched_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "other.pth"
    other, _ = create_idlevit("deit_tiny_patch16_224", img_size=32, num_classes=10, warn_random=False,
                              patch_size=8, embed_dim=48, depth=4, num_heads=2)
    torch.save({"model": other.state_dict()}, ckpt)
    code = main(tiny_cli_args(tmp_path / "run", "--ckpt", str(ckpt)))
    _one_line_error(capsys, code, "does not match")


@pytest.mark.parametrize("layout,words", [
    (dict(images=False), ["no images", "train"]),
    (dict(train=False), ["no train/ folder"]),
    (dict(val=False), ["no val/ folder"]),
])
def test_bad_data_folder(tmp_path, capsys, layout, words):
    data = _folder(tmp_path / "data", **layout)
    args = [a for a in tiny_cli_args(tmp_path / "run") if a != "--synthetic"]
    code = main(["--data", str(data), *args])
    _one_line_error(capsys, code, *words)
    assert not (tmp_path / "run" / "last.pth").exists()


def test_missing_data_folder_and_bad_flags(tmp_path, capsys):
    args = [a for a in tiny_cli_args(tmp_path / "run") if a != "--synthetic"]
    _one_line_error(capsys, main(["--data", str(tmp_path / "nope"), *args]), "not a folder")
    with pytest.raises(SystemExit) as e:
        main(tiny_cli_args(tmp_path / "run", "--keep-ratio", "1.5"))
    assert e.value.code == 2 and "outside (0, 1]" in capsys.readouterr().err
    _one_line_error(capsys, main(tiny_cli_args(tmp_path / "run", "--resume")), "nothing to resume")


def test_every_option_says_its_default():
    from idlevit.cli.train import build_parser
    for action in build_parser()._actions:
        if action.dest != "help":
            assert action.help and action.help.rstrip().endswith(")") and "(default:" in action.help, action.dest


@pytest.mark.parametrize("flags,words", [
    (["--lr", "nan"], ["--lr nan is not a finite number"]),
    (["--lr", "inf"], ["--lr inf is not a finite number"]),
    (["--min-lr", "-1"], ["--min-lr -1 must be >= 0"]),
    (["--synthetic-size", "0"], ["--synthetic-size 0 must be >= 1"]),
    (["--synthetic-val-size", "0"], ["--synthetic-val-size 0 must be >= 1"]),
    (["--img-size", "30"], ["--img-size 30 is not a multiple of the patch size 8", "pass 24 or 32"]),
    (["--img-size", "0"], ["--img-size 0 is not a positive image size"]),
    (["--model-kwargs", "depth=abc"], ["model argument depth='abc' is not a number", "depth=12"]),
    (["--model-kwargs", "qkv_bias=maybe"], ["model argument qkv_bias='maybe' is not True or False"]),
    (["--feature-kd", "projector-ensemble", "--projectors", "0"], ["--projectors 0 must be >= 1"]),
])
def test_bad_numbers_and_sizes_are_one_line_before_any_work(tmp_path, capsys, flags, words):
    code = main(tiny_cli_args(tmp_path / "run", *flags))
    _one_line_error(capsys, code, *words)
    assert not (tmp_path / "run").exists()


def test_lvvit_fine_tunes_with_distillation_and_cut_loss(tmp_path):
    """--model idlevit_lvvit_s (shrunk): conv stem, skip_lam and the dense head train through forward_masked."""
    args = [a if a != "deit_tiny_patch16_224" else "idlevit_lvvit_s" for a in tiny_cli_args(tmp_path / "run")]
    args[args.index("--img-size") + 1] = "64"                 # 16 tokens of 16 px
    args.remove("patch_size=8")
    assert main(args + ["--epochs", "1", "--keep-ratio", "0.5"]) == 0
    log = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert log[-1]["train"]["kl"] > 0 and log[-1]["train"]["cut"] > 0
    model, _ = create_idlevit("idlevit_lvvit_s", keep_ratio=0.5, ckpt=str(tmp_path / "run" / "model.pth"),
                              img_size=64, num_classes=10, embed_dim=32, depth=4, num_heads=2)
    assert model.keep_tokens == [None, 8, 4, 2]


def test_projector_ensemble_flags_train_and_stay_out_of_the_weights(tmp_path):
    import timm
    run = tmp_path / "run"
    assert main(tiny_cli_args(run, "--epochs", "1", "--feature-kd", "projector-ensemble", "--beta", "25",
                              "--projectors", "4", "--projector-act", "none")) == 0
    log = [json.loads(line) for line in open(run / "log.jsonl")]
    assert 0 < log[1]["train"]["feature"] < 2 and log[1]["train"]["kl"] > 0
    state = torch.load(run / "last.pth", weights_only=True)
    assert (state["args"]["feature_kd"], state["args"]["projectors"], state["args"]["projector_act"]) == \
        ("projector-ensemble", 4, "none")
    assert len([k for k in state["projectors"] if k.endswith("weight")]) == 4
    plain = timm.create_model("deit_tiny_patch16_224", img_size=32, num_classes=10, **TINY_KW)
    plain.load_state_dict(torch.load(run / "model.pth", weights_only=True)["model"], strict=True)


def _documented_commands(path, program):
    """The `program ...` commands of a docs page's bash blocks, continuation lines joined, as argv lists."""
    import re
    import shlex
    text = open(path).read()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith(program):
                commands.append(shlex.split(line)[1:])
    return commands


def test_the_feature_distillation_page_documents_real_flags(monkeypatch):
    import importlib.util
    import os
    import sys

    from idlevit.cli.train import build_parser, config_from_args
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    page = os.path.join(root, "docs", "feature-distillation.md")
    commands = _documented_commands(page, "idle-train")
    assert len(commands) == 2
    for argv in commands:
        cfg = config_from_args(build_parser().parse_args(argv))
        assert cfg.feature_kd == "projector-ensemble" and cfg.beta == 25.0
    (script, *argv), = _documented_commands(page, "python")
    monkeypatch.setattr(sys, "path", list(sys.path))       # the script puts its folders first on the path
    spec = importlib.util.spec_from_file_location("replicate_feature_kd", os.path.join(root, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(argv)
    assert args.seeds == [0, 1, 2] and args.json == "experiments/results/feature_kd.json"
