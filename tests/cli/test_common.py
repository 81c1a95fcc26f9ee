"""Shared CLI plumbing: deprecated flag names (one test per old name), the --json flag."""
import pytest

from idlevit.cli import deploy, runtime
from idlevit.cli.common import ArgumentParser, add_deprecated_alias, add_json_flag


def _parse(build_parser, argv, capsys):
    args = build_parser().parse_args(argv)
    return args, capsys.readouterr().err.splitlines()


def _warning(old, new):
    return f"warning: {old} is deprecated and goes in the next release: use {new}"


def test_an_alias_stores_into_the_new_dest_and_is_hidden_from_help(capsys):
    p = ArgumentParser(prog="t")
    p.add_argument("--new", type=int, default=3, help="x (default: 3)")
    add_deprecated_alias(p, "--old", "--new", dest="new", type=int)
    assert p.parse_args([]).new == 3 and capsys.readouterr().err == ""
    assert p.parse_args(["--old", "5"]).new == 5
    assert capsys.readouterr().err.splitlines() == [_warning("--old", "--new")]
    assert "--old" not in p.format_help()


@pytest.mark.parametrize("argv,dest,value,old,new", [
    (["bench", "--fp16"], "autocast", "fp16", "--fp16", "--autocast fp16"),
    (["sweep", "--fp16"], "autocast", "fp16", "--fp16", "--autocast fp16"),
    (["validate", "-b", "3"], "parity_batch", 3, "-b", "--parity-batch"),
    (["validate", "--batch-size", "3"], "parity_batch", 3, "--batch-size", "--parity-batch"),
    (["show", "--onnx", "a.onnx", "b.onnx"], "onnx_files", ["a.onnx", "b.onnx"], "--onnx", "--onnx-files"),
])
def test_old_runtime_flag_names(argv, dest, value, old, new, capsys):
    args, err = _parse(runtime.build_parser, argv, capsys)
    assert getattr(args, dest) == value and err == [_warning(old, new)]


def test_old_deploy_onnx_flag(capsys):
    args, err = _parse(deploy.build_parser, ["triton", "--onnx", "a.onnx", "-o", "repo"], capsys)
    assert args.onnx_files == ["a.onnx"] and err == [_warning("--onnx", "--onnx-files")]


@pytest.mark.parametrize("build_parser,argv", [
    (runtime.build_parser, ["lineup", "--onnx", "a.onnx", "--baseline-onnx", "b.onnx"]),
    (deploy.build_parser, ["loadtest", "-r", "repo"]),
])
def test_json_flag_and_the_old_json_path(build_parser, argv, capsys):
    args, err = _parse(build_parser, argv + ["--json"], capsys)
    assert (args.json, args.json_output, err) == (True, None, [])
    args, err = _parse(build_parser, argv + ["--json", "out.json"], capsys)
    assert (args.json, args.json_output) == (False, "out.json")
    assert err == ["warning: --json PATH is deprecated and goes in the next release: use --json-output out.json"]
    args, err = _parse(build_parser, argv + ["--json-output", "out.json"], capsys)
    assert (args.json, args.json_output, err) == (False, "out.json", [])


def test_json_flag_help_names_its_default():
    p = ArgumentParser(prog="t")
    add_json_flag(p, "the report")
    assert "print the report as one JSON object instead of the table (default: off)" in " ".join(p.format_help().split())
