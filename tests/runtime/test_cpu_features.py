"""CPU flags -> which ONNX Runtime int8 kernels run (exact u8u8 only on x86 without VNNI), and the runner's choice."""
import pytest

from idlevit.runtime import cpu_features as cf
from idlevit.runtime import ort_runner
from idlevit.runtime.cpu_features import CpuFeatures, exact_int8_reason

NO_VNNI = "fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl"


def write_cpuinfo(tmp_path, flags_line):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU @ 2.50GHz\n{flags_line}\n\nprocessor\t: 1\n")
    return str(path)


@pytest.mark.parametrize("machine,flags,exact,why", [
    ("x86_64", NO_VNNI, True, "no VNNI"),
    ("x86_64", NO_VNNI + " avx512_vnni", False, "avx512_vnni"),
    ("x86_64", "avx2 avx_vnni", False, "avx_vnni"),
    ("x86_64", NO_VNNI + " amx_int8 amx_bf16 avx512_bf16", False, "amx_int8"),
    ("aarch64", "fp asimd asimddp", False, "do not apply"),
    ("x86_64", None, True, "unknown"),
])
def test_exact_kernels_only_where_u8s8_saturates(machine, flags, exact, why):
    cpu = CpuFeatures("cpu", machine, None if flags is None else frozenset(flags.split()))
    needed, reason = exact_int8_reason(cpu)
    assert needed is exact and why in reason
    needed7, reason7 = exact_int8_reason(cpu, weight_bits=7)   # 7-bit weights never saturate the pair sums
    assert needed7 is False and (reason7 == reason if not exact else "7-bit weights" in reason7)


def test_reads_model_and_flags_from_cpuinfo(tmp_path):
    model, flags = cf._read_cpuinfo(write_cpuinfo(tmp_path, f"flags\t\t: {NO_VNNI}"))
    cpu = CpuFeatures(model, "x86_64", flags)
    assert model == "Test CPU @ 2.50GHz" and "avx512bw" in flags
    assert cpu.summary() == ("Test CPU @ 2.50GHz; avx2 avx512f avx512bw avx512cd avx512dq avx512vl; "
                             "no VNNI/BF16/AMX")
    assert cf._read_cpuinfo(str(tmp_path / "missing")) == (None, None)


@pytest.mark.parametrize("flags,expected", [(NO_VNNI, "exact u8u8"), (NO_VNNI + " avx512_vnni", "default u8s8")])
def test_ort_runner_picks_its_int8_kernels_from_the_cpu(monkeypatch, flags, expected):
    cpu = CpuFeatures("cpu", "x86_64", frozenset(flags.split()))
    monkeypatch.setattr(ort_runner, "cpu_features", lambda: cpu)
    runner = ort_runner.OrtRunner(b"unused")
    assert runner.describe()["int8_kernels"].startswith(expected)
    forced = ort_runner.OrtRunner(b"unused", exact_int8=expected != "exact u8u8")
    assert "forced" in forced.describe()["int8_kernels"]
