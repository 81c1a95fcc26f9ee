import pytest
import timm
import torch

from idlevit.checkpoint import load_checkpoint, read_state_dict
from idlevit.errors import UserError
from idlevit.factory import create_idlevit


@pytest.fixture(scope="module")
def tiny_state():
    torch.manual_seed(0)
    return timm.create_model("deit_tiny_patch16_224").state_dict()


@pytest.mark.parametrize("wrap", ["raw", "model", "state_dict", "ddp", "safetensors"])
def test_formats_load_strict(tmp_path, tiny_state, wrap):
    if wrap == "safetensors":
        from safetensors.torch import save_file
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in tiny_state.items()}, str(path))
    else:
        obj = {"raw": tiny_state, "model": {"model": tiny_state, "epoch": 3},
               "state_dict": {"state_dict": tiny_state},
               "ddp": {"module." + k: v for k, v in tiny_state.items()}}[wrap]
        path = tmp_path / "w.pth"
        torch.save(obj, path)
    model, source = create_idlevit("idlevit_deit_tiny_patch16_224", 0.7, ckpt=str(path))
    assert torch.equal(model.state_dict()["blocks.3.attn.qkv.weight"], tiny_state["blocks.3.attn.qkv.weight"])
    assert len(source.ckpt_sha256) == 64 and source.seed is None


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_state_dict(str(tmp_path / "nope.pth"))


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.pth"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(UserError, match="corrupt or unreadable") as e:
        read_state_dict(str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))
    path = tmp_path / "evil.pth"
    torch.save({"model": Evil()}, path)
    with pytest.raises(UserError, match=r"contains Python objects \(print\)"):
        read_state_dict(str(path))


def test_wrong_architecture_names_keys(tmp_path, tiny_state):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_state, path)
    with pytest.raises(UserError, match=r"cls_token is \(1, 1, 192\) in the file but \(1, 1, 384\)") as e:
        create_idlevit("idlevit_deit_small_patch16_224", 0.7, ckpt=str(path))
    assert "--model" in str(e.value)


def test_missing_keys_named(tmp_path, tiny_state):
    state = dict(tiny_state)
    del state["blocks.11.mlp.fc2.bias"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(UserError, match=r"missing blocks\.11\.mlp\.fc2\.bias"):
        create_idlevit("idlevit_deit_tiny_patch16_224", 0.7, ckpt=str(path))


def test_wrong_img_size_for_checkpoint(tmp_path, tiny_state):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_state, path)
    with pytest.raises(UserError, match="--img-size"):
        create_idlevit("idlevit_deit_tiny_patch16_224", 0.7, ckpt=str(path), img_size=256)


def test_bad_keep_ratio_and_unknown_model():
    with pytest.raises(UserError, match=r"outside \(0, 1\]"):
        create_idlevit("idlevit_deit_tiny_patch16_224", 1.5)
    with pytest.raises(UserError, match="unknown model"):
        create_idlevit("resnet_not_a_model", 0.7)


def test_no_state_dict_inside(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(UserError, match="holds no state dict"):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))


def test_pickled_system_call_holds_code_and_is_refused(tmp_path):
    """torch words this refusal differently by version ('blocked module' on 2.14); the pickle itself names it."""
    import os

    class Shell:
        def __reduce__(self):
            return (os.system, ("echo ran code",))
    path = tmp_path / "shell.pth"
    torch.save({"model": Shell()}, path)
    with pytest.raises(UserError, match=r"holds code and was refused.*\((posix|nt)\.system\)") as e:
        read_state_dict(str(path))
    assert "corrupt" not in str(e.value) and "weights_only=False" not in str(e.value)


@pytest.mark.parametrize("how", ["legacy_torch", "pickle_protocol_0", "pickle_protocol_4"])
def test_legacy_non_zip_pickle_with_system_call_is_refused_as_code(tmp_path, how, recwarn):
    """A pre-zip torch.save file or a plain pickle: its opcodes are read, never run, and name the call."""
    import os
    import pickle

    marker = tmp_path / "ran"

    class Shell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    path = tmp_path / "shell.pth"
    if how == "legacy_torch":
        torch.save({"model": {"w": torch.zeros(2)}, "x": Shell()}, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump({"w": Shell()}, f, protocol=int(how[-1]))
    with pytest.raises(UserError, match=r"holds code and was refused.*\((posix|nt)\.system\)") as e:
        read_state_dict(str(path))
    assert "corrupt" not in str(e.value) and not marker.exists()
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]   # no torch warning beside the line


def test_pickled_globals_are_read_from_the_file(tmp_path):
    from collections import Counter

    from idlevit.checkpoint import pickled_globals
    path = tmp_path / "c.pth"
    torch.save({"w": torch.zeros(2), "counts": Counter("ab")}, path)
    names = pickled_globals(str(path))
    assert "collections.Counter" in names and any(n.startswith("torch.") for n in names)
    assert pickled_globals(str(tmp_path)) == [] and pickled_globals(__file__) == []


def test_folder_given_as_checkpoint_names_its_files(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"")
    with pytest.raises(UserError, match=r"is a folder, not a file \(it holds model.pth\): pass --ckpt"):
        read_state_dict(str(tmp_path))
