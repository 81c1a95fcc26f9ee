"""Atomic outputs: temp files of killed writers are recognised and removed by the next write; normal umask."""
import os
import signal
import subprocess
import sys

import pytest

from idlevit.errors import UserError
from idlevit.fileio import atomic_output, check_output_path, make_output_dir, remove_stale_temps, temp_path_beside

# a writer that opens its temp file and then waits to be killed
WRITER = ("import sys, time\n"
          "from idlevit.fileio import atomic_output\n"
          "with atomic_output(sys.argv[1], suffix='.onnx') as tmp:\n"
          "    open(tmp, 'w').write('half a file')\n"
          "    print('writing', flush=True)\n"
          "    time.sleep(120)\n")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid


def _hidden(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith("."))


def _sigkill_while_writing(script: str, out) -> None:
    """Run `script` (it prints 'writing' once its temporary file exists) and SIGKILL it there."""
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()


def test_sigkilled_writer_leaves_a_temp_that_the_next_write_removes(tmp_path):
    out = tmp_path / "model.onnx"
    _sigkill_while_writing(WRITER, out)
    left = _hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(".model.onnx.tmp-") and not out.exists()
    with atomic_output(str(out)) as tmp:
        open(tmp, "w").write("whole")
    assert _hidden(tmp_path) == [] and out.read_text() == "whole"


def test_temps_of_running_writers_and_other_files_are_kept(tmp_path):
    out = str(tmp_path / "last.pth")
    mine = temp_path_beside(out)                     # this process is alive
    dead = mine.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    open(dead, "w").close()
    other = tmp_path / ".last.pth.something-else"     # not our naming: never touched
    other.write_text("x")
    assert remove_stale_temps(out) == [os.path.basename(dead)]
    assert os.path.exists(mine) and other.exists() and not os.path.exists(dead)


def test_check_output_path_cleans_before_any_work(tmp_path):
    out = str(tmp_path / "model.onnx")
    mine = temp_path_beside(out, ".onnx")
    stale = mine.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    os.replace(mine, stale)
    check_output_path(out)
    assert not os.path.exists(stale)


def test_outputs_get_the_normal_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output(str(tmp_path / "a.json")) as tmp:
            open(tmp, "w").write("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_output_folder_errors_are_one_line(tmp_path):
    make_output_dir(str(tmp_path / "new" / "deeper"))
    assert (tmp_path / "new" / "deeper").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"-o .*file is a file: pass a folder"):
        make_output_dir(str(tmp_path / "file"))
    with pytest.raises(UserError, match=r"cannot create --onnx-dir .*file/sub \(.*file is a file\)"):
        make_output_dir(str(tmp_path / "file" / "sub"), "--onnx-dir")
    with pytest.raises(UserError, match=r"cannot create --onnx-dir /proc/idlevit-test .*: pass a folder you can"):
        make_output_dir("/proc/idlevit-test", "--onnx-dir")


NESTED_WRITER = ("import sys, time\n"
                 "from idlevit.fileio import atomic_output\n"
                 "with atomic_output(sys.argv[1], suffix='.onnx') as tmp:\n"      # idle-export's workflow
                 "    with atomic_output(tmp, suffix='.onnx') as inner:\n"         # the exporter inside it
                 "        open(inner, 'w').write('half a model')\n"
                 "        print('writing', flush=True)\n"
                 "        time.sleep(120)\n")


def test_sigkilled_nested_writer_leaves_temps_of_temps_that_the_next_write_removes(tmp_path):
    out = tmp_path / "t.onnx"
    _sigkill_while_writing(NESTED_WRITER, out)
    left = _hidden(tmp_path)
    assert len(left) == 2 and any(name.startswith("..t.onnx.tmp-") for name in left)
    check_output_path(str(out))
    assert _hidden(tmp_path) == []


def test_temps_of_temps_and_staged_folders_of_killed_writers_are_removed(tmp_path):
    """A library writing its output atomically into our temp path makes `..x.tmp-...tmp-...`; the next run of x
    removes it, and a staged folder, once their writers are gone; a live writer's stay."""
    from idlevit.fileio import temp_dir_beside
    out = str(tmp_path / "t.onnx")
    dead = _dead_pid()
    outer = temp_path_beside(out, ".onnx").replace(f"-{os.getpid()}-", f"-{dead}-")
    inner = temp_path_beside(outer, ".onnx")          # written by this (live) process, inside a dead chain
    os.remove(inner)
    inner = inner.replace(f"-{os.getpid()}-", f"-{dead}-")
    staged = temp_dir_beside(out).replace(f"-{os.getpid()}-", f"-{dead}-")
    os.makedirs(os.path.join(staged, "model", "1"))
    live = temp_path_beside(temp_path_beside(out, ".onnx"), ".onnx")
    for path in (outer, inner):
        open(path, "w").write("half")
    assert os.path.basename(inner).startswith("..t.onnx.tmp-")
    removed = remove_stale_temps(out)
    assert sorted(removed) == sorted(os.path.basename(p) for p in (outer, inner, staged))
    assert os.path.exists(live) and not os.path.exists(staged)


def test_scratch_folders_of_gone_processes_go_and_libraries_write_into_ours(tmp_path, monkeypatch):
    import tempfile

    from idlevit.fileio import library_temp_dir, scratch_dir
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch_dir("triton") as mine:
        stale = os.path.join(str(tmp_path), os.path.basename(mine).replace(f"-{os.getpid()}-", f"-{_dead_pid()}-"))
    os.makedirs(os.path.join(stale, "ort.quant.abc"))
    (tmp_path / "idlevit-notes").mkdir()              # not our naming: kept
    with library_temp_dir("quant") as folder:
        assert not os.path.exists(stale) and tempfile.gettempdir() == folder
        library_own = tempfile.mkdtemp(prefix="ort.quant.")
        assert os.path.dirname(library_own) == folder
    assert tempfile.gettempdir() == str(tmp_path) and sorted(os.listdir(tmp_path)) == ["idlevit-notes"]


def test_new_output_dirs_removes_only_the_empty_folders_it_made_when_the_block_fails(tmp_path):
    from idlevit.fileio import new_output_dirs
    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt):
        with new_output_dirs((str(tmp_path / "kept"), "-o"), (str(tmp_path / "a" / "b"), "--onnx-dir"),
                             (str(tmp_path / "c"), "--cache")):
            (tmp_path / "c" / "cached.onnx").write_text("x")
            raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["c", "kept"]
    with new_output_dirs((str(tmp_path / "d"), "-o")):
        pass
    assert (tmp_path / "d").is_dir()
