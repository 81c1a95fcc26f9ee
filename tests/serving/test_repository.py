"""idle-deploy triton: every config.pbtxt parses against Triton's own schema and says what the file says."""
import json
import os

import pytest

from idlevit.engines.sidecar import EngineSidecar, write_sidecar
from idlevit.errors import UserError
from idlevit.fileio import OUTPUT_MARKER, file_sha256
from idlevit.serving.repository import DeployOptions, read_onnx_io, write_repository

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="pip install 'idlevit[serve]'")
from google.protobuf import text_format  # noqa: E402  (after the importorskip)


def parse(path):
    with open(path) as f:
        return text_format.Parse(f.read(), model_config_pb2.ModelConfig())


def fake_engine(tmp_path, onnx, min_batch=1, max_batch=16, profile=None):
    """An engine file (bytes never read here) and the sidecar idle-trt-build writes beside it, built from `onnx`."""
    engine = str(tmp_path / "m.plan")
    with open(engine, "wb") as f:
        f.write(b"not read by idle-deploy")
    if profile is None:
        profile = {"input": {"min": [min_batch, 3, 64, 64], "opt": [8, 3, 64, 64], "max": [max_batch, 3, 64, 64]}}
    write_sidecar(EngineSidecar(tensorrt_version="10.13.3.9", gpu_name="NVIDIA H100", compute_capability="9.0",
                                precision="fp16", profile=profile, onnx_sha256="ab" * 32,
                                source_onnx_sha256=file_sha256(onnx)), engine)
    return engine


def test_every_config_parses_against_triton_schema(tiny_ladder, tmp_path):
    r10, r05 = tiny_ladder
    out = tmp_path / "repo"
    opts = DeployOptions(max_batch=4, instances=2, max_queue_delay_us=500, p99_target_ms=50)
    configs = write_repository([r10, r05], str(out), engine=fake_engine(tmp_path, r05), options=opts)
    assert set(configs) == {"idlevit", "idlevit_r1_onnx", "idlevit_r0.5_onnx", "idlevit_trt"}
    io = read_onnx_io(r05)
    for name in configs:
        config = parse(out / name / "config.pbtxt")
        assert config.name == name
        assert [i.name for i in config.input] == [io.image_input.name]
        assert list(config.input[0].dims) == [3, 64, 64]
        assert config.input[0].data_type == model_config_pb2.TYPE_FP32
        assert config.output[0].name == "logits" and list(config.output[0].dims) == [1000]
        assert config.HasField("dynamic_batching")
        assert config.dynamic_batching.max_queue_delay_microseconds == 500
        assert config.instance_group[0].count == 2
    assert parse(out / "idlevit_r0.5_onnx" / "config.pbtxt").platform == "onnxruntime_onnx"
    assert parse(out / "idlevit_r0.5_onnx" / "config.pbtxt").max_batch_size == 4
    trt = parse(out / "idlevit_trt" / "config.pbtxt")
    assert (trt.platform, trt.max_batch_size) == ("tensorrt_plan", 16)   # from the engine's profile
    assert trt.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert (out / "idlevit_trt" / "1" / "model.plan").is_file() and (out / "idlevit_trt" / "1" / "model.plan.json").is_file()
    py = parse(out / "idlevit" / "config.pbtxt")
    assert py.backend == "python" and py.max_batch_size == 4
    assert [o.name for o in py.output] == ["logits", "keep_ratio"]
    params = {k: v.string_value for k, v in py.parameters.items()}
    assert json.loads(params["files"]) == {"1": "model.onnx", "0.5": "model_1.onnx"}
    assert params["p99_target_ms"] == "50" and params["runner"] == "ort"
    assert sorted(os.listdir(out / "idlevit" / "1")) == ["model.onnx", "model.py", "model_1.onnx"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert (out / OUTPUT_MARKER).is_file()   # what --force may replace


def test_dims_and_batch_follow_the_engine_profile(tiny_ladder, tmp_path):
    engine = fake_engine(tmp_path, tiny_ladder[1], max_batch=32)
    write_repository([tiny_ladder[1]], str(tmp_path / "repo"), engine=engine)
    assert parse(tmp_path / "repo" / "idlevit_trt" / "config.pbtxt").max_batch_size == 32
    with pytest.raises(UserError, match="--min-batch 1"):
        write_repository([tiny_ladder[1]], str(tmp_path / "repo2"), engine=fake_engine(tmp_path, tiny_ladder[1], min_batch=2))
    assert not (tmp_path / "repo2").exists()


@pytest.mark.parametrize("case,match", [
    ("same_ratio", "one file per keep ratio"), ("exists", "not empty"), ("trt_without_engine", "--engine"),
    ("bad_name", "not a plain name"), ("missing_onnx", "does not exist|not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_ladder, tmp_path, case, match):
    r10, r05 = tiny_ladder
    out = tmp_path / "repo"
    files, opts = [r05], DeployOptions()
    if case == "same_ratio":
        files = [r05, r05]
    elif case == "exists":
        out.mkdir()
        (out / "keep.txt").write_text("user data")
    elif case == "trt_without_engine":
        opts = DeployOptions(runner="trt")
    elif case == "bad_name":
        opts = DeployOptions(name="my model")
    elif case == "missing_onnx":
        files = [str(tmp_path / "nope.onnx")]
    with pytest.raises(UserError, match=match):
        write_repository(files, str(out), options=opts)
    assert (out / "keep.txt").read_text() == "user data" if case == "exists" else not out.exists()


def test_cli_writes_repository_and_reports_bad_input(tiny_ladder, tmp_path, capsys):
    from idlevit.cli.deploy import main
    assert main(["triton", "--onnx-files", tiny_ladder[1], "-o", str(tmp_path / "repo"), "--max-batch", "2"]) == 0
    assert parse(tmp_path / "repo" / "idlevit" / "config.pbtxt").max_batch_size == 2
    assert "idlevit_onnx: onnxruntime_onnx" in capsys.readouterr().out
    assert main(["triton", "--onnx-files", tiny_ladder[1], "-o", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--force" in err[0]
    assert main(["triton", "--onnx-files", tiny_ladder[1], "-o", str(tmp_path / "repo2"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["repository"] == str(tmp_path / "repo2")
    assert report["models"]["idlevit_onnx"] == "onnxruntime_onnx" and report["models"]["idlevit"] == "python"


def test_elastic_file_onnxruntime_model_is_unbatched_python_model_takes_images_only(tmp_path_factory, tmp_path):
    from tests.onnx_cache import TEST_VIT_ELASTIC, export_config
    elastic = export_config(tmp_path_factory, TEST_VIT_ELASTIC)
    write_repository([elastic], str(tmp_path / "repo"), engine=fake_engine(tmp_path, elastic))
    ort = parse(tmp_path / "repo" / "idlevit_onnx" / "config.pbtxt")
    assert ort.max_batch_size == 0 and not ort.HasField("dynamic_batching")   # K inputs have no batch axis
    assert [(i.name, list(i.dims)) for i in ort.input] == [("input", [-1, 3, 64, 64]), ("keep_tokens.1", [-1]),
                                                           ("keep_tokens.2", [-1]), ("keep_tokens.3", [-1])]
    assert parse(tmp_path / "repo" / "idlevit_trt" / "config.pbtxt").max_batch_size == 0
    py = parse(tmp_path / "repo" / "idlevit" / "config.pbtxt")
    assert [i.name for i in py.input] == ["input"] and py.max_batch_size == 8 and py.HasField("dynamic_batching")
    with pytest.raises(UserError, match="pass it alone with --onnx-files"):
        write_repository([elastic, tiny_path(tmp_path_factory)], str(tmp_path / "repo2"))


def tiny_path(tmp_path_factory):
    from tests.onnx_cache import TEST_VIT_05, export_config
    return export_config(tmp_path_factory, TEST_VIT_05)


def _cli(capsys, *argv):
    """idle-deploy's exit status and its stderr lines."""
    from idlevit.cli.deploy import main
    try:
        code = main(list(argv))
    except SystemExit as e:   # argparse refuses a flag's value while parsing
        code = e.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_force_replaces_only_a_folder_it_wrote_never_cwd_an_input_or_its_folder(tiny_ladder, tmp_path, monkeypatch,
                                                                               capsys):
    import shutil
    proj = tmp_path / "proj"
    (proj / "models" / "sub").mkdir(parents=True)
    onnx = proj / "models" / "m.onnx"
    shutil.copyfile(tiny_ladder[1], onnx)
    (proj / "notes.txt").write_text("mine")
    (proj / "models" / "sub" / "other.bin").write_text("mine too")
    monkeypatch.chdir(proj)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    for out, words in ((".", "current folder"), (str(proj / "models"), "input"), ("models", "input"),
                       (str(tmp_path), "current folder")):
        code, err = _cli(capsys, "triton", "--onnx-files", "models/m.onnx", "-o", out, "--force")
        assert code == 2 and len(err) == 1 and err[0].startswith("error: --force would delete") and words in err[0]
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "keep.txt").write_text("not written by idle-deploy")
    code, err = _cli(capsys, "triton", "--onnx-files", "models/m.onnx", "-o", str(tmp_path / "theirs"), "--force")
    assert code == 2 and len(err) == 1 and "has no .idlevit-output" in err[0]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before + ["theirs", "theirs/keep.txt"]
    assert _cli(capsys, "triton", "--onnx-files", "models/m.onnx", "-o", "repo") == (0, [])
    (proj / "repo" / "stray.txt").write_text("from an older run")
    assert _cli(capsys, "triton", "--onnx-files", "models/m.onnx", "-o", "repo", "--force") == (0, [])
    assert not (proj / "repo" / "stray.txt").exists() and (proj / "repo" / "idlevit" / "config.pbtxt").is_file()
    assert not [p for p in proj.iterdir() if p.name.startswith(".")]   # no staged or old folder left


def test_output_that_is_a_file_or_cannot_be_written_is_one_line(tiny_ladder, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    for out, extra in ((str(tmp_path / "a_file"), []), (str(tmp_path / "a_file"), ["--force"]),
                       (str(tmp_path / "a_file" / "repo"), []), ("/proc/idlevit-repo", []),
                       (str(tmp_path / "no" / "such" / "repo"), [])):
        code, err = _cli(capsys, "triton", "--onnx-files", tiny_ladder[1], "-o", out, *extra)
        assert code == 2 and len(err) == 1 and err[0].startswith("error:") and out in err[0], err
    assert (tmp_path / "a_file").read_text() == "x" and sorted(os.listdir(tmp_path)) == ["a_file"]


@pytest.mark.parametrize("flag,value", [("--max-batch", "99999999999"), ("--max-batch", "0"),
                                        ("--max-queue-delay-us", "-1"), ("--instances", "0"),
                                        ("--p99-target-ms", "0"), ("--p99-target-ms", "-5"),
                                        ("--p99-target-ms", "nan"), ("--threads", "-3"), ("--threads", "0")])
def test_numbers_triton_would_refuse_are_refused_before_writing(tiny_ladder, tmp_path, capsys, flag, value):
    code, err = _cli(capsys, "triton", "--onnx-files", tiny_ladder[1], "-o", str(tmp_path / "repo"), flag, value)
    assert code == 2 and len(err) == 1 and flag in err[0] and value in err[0]
    assert os.listdir(tmp_path) == []


def test_library_callers_get_the_same_checks_and_the_schema_is_the_last_gate(tiny_ladder, tmp_path):
    from idlevit.serving.triton_config import ModelConfig, TensorSpec, check_with_triton_schema
    for opts in (DeployOptions(max_batch=2 ** 31), DeployOptions(max_queue_delay_us=-1), DeployOptions(threads=0),
                 DeployOptions(p99_target_ms=float("nan"))):
        with pytest.raises(UserError, match="out of range|finite|must be"):
            write_repository([tiny_ladder[1]], str(tmp_path / "repo"), options=opts)
    assert not (tmp_path / "repo").exists()
    good = ModelConfig("m", [TensorSpec("input", "float32", [3, 64, 64])], [TensorSpec("logits", "float32", [10])],
                       8, backend="python")
    check_with_triton_schema(good.to_pbtxt(), "m")
    for text, words in ((good.to_pbtxt().replace("max_batch_size: 8", "max_batch_size: 99999999999"), "schema"),
                        (good.to_pbtxt().replace("max_queue_delay_microseconds: 0",
                                                 "max_queue_delay_microseconds: -1"), "schema"),
                        (good.to_pbtxt().replace("dims: [ 10 ]", "dims: [ 0 ]"), "would not load"),
                        (good.to_pbtxt().replace("count: 1", "count: 0"), "would not load")):
        with pytest.raises(UserError, match=words):
            check_with_triton_schema(text, "m")


@pytest.mark.parametrize("profile", [{"input": {}}, {}, {"input": {"min": [1, 3], "opt": [1], "max": [2, 3]}},
                                     {"input": {"min": [4, 3, 64, 64], "opt": [4, 3, 64, 64], "max": [2, 3, 64, 64]}}])
def test_engine_with_a_broken_profile_is_one_line(tiny_ladder, tmp_path, capsys, profile):
    engine = fake_engine(tmp_path, tiny_ladder[1], profile=profile)
    code, err = _cli(capsys, "triton", "--onnx-files", tiny_ladder[1], "--engine", engine, "-o", str(tmp_path / "repo"))
    assert code == 2 and len(err) == 1 and "broken optimization profile" in err[0]
    assert not (tmp_path / "repo").exists()


def test_engine_built_from_another_onnx_is_refused(tiny_ladder, tmp_path, capsys):
    engine = fake_engine(tmp_path, tiny_ladder[0])                       # built from the r = 1.0 file
    with open(engine, "wb") as f:
        f.write(os.urandom(4096))
    code, err = _cli(capsys, "triton", "--onnx-files", tiny_ladder[1], "--engine", engine, "-o", str(tmp_path / "repo"))
    assert code == 2 and len(err) == 1 and "was not built from the --onnx-files given" in err[0]
    assert not (tmp_path / "repo").exists()


def test_a_folder_given_for_a_file_flag_says_so(tiny_ladder, tmp_path, capsys):
    for argv, words in ((["--onnx-files", str(tmp_path)], f"ONNX file {tmp_path} is a folder"),
                        (["--onnx-files", tiny_ladder[1], "--engine", str(tmp_path)], f"--engine {tmp_path} is a folder")):
        code, err = _cli(capsys, "triton", *argv, "-o", str(tmp_path / "repo"))
        assert code == 2 and len(err) == 1 and words in err[0]
    assert os.listdir(tmp_path) == []


def test_an_empty_current_folder_is_not_replaced_either(tiny_ladder, tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    code, err = _cli(capsys, "triton", "--onnx-files", tiny_ladder[1], "-o", ".")
    assert code == 2 and len(err) == 1 and "current folder" in err[0]
    assert os.listdir(tmp_path) == ["empty"] and os.listdir(tmp_path / "empty") == []
