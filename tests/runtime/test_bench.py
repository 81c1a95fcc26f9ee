"""Benchmark mechanics: alternating rounds, latency statistics, efficiency from measured figures."""
import numpy as np
import pytest

from idlevit.runtime.bench import Timing, bench_against_baseline, executed_gmacs, time_rounds
from idlevit.runtime.macs import count_executed_macs
from idlevit.runtime.reference import baseline_of
from idlevit.runtime.runner import Runner, TensorInfo
from idlevit.runtime.torch_runner import TorchRunner
from tests.conftest import tiny_vit


class Recorder(Runner):
    """Logs every call into a shared list, so the test can see the order the bench used."""

    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def _load(self):
        pass

    def _infer(self, feed):
        self.log.append(self.name)
        return {"logits": np.zeros((len(feed["input"]), 2), np.float32)}

    @property
    def input_info(self):
        return {"input": TensorInfo("float32", ("batch", 3, 4, 4))}

    @property
    def output_names(self):
        return ("logits",)


def test_rounds_alternate_the_order_after_warmup():
    log = []
    runners = {"a": Recorder("a", log).load(), "b": Recorder("b", log).load()}
    timings = time_rounds(runners, np.zeros((3, 3, 4, 4), np.float32), warmup=1, iters=5, rounds=3)
    assert log == ["a", "b"] + ["a", "a", "b", "b"] + ["b", "b", "a", "a"] + ["a", "b"]
    assert [len(t.latencies_ms) for t in timings.values()] == [5, 5]
    assert all(t.batch == 3 for t in timings.values())


def test_timing_statistics():
    t = Timing("x", batch=4, latencies_ms=[10.0, 20.0, 30.0, 40.0])
    assert t.throughput == pytest.approx(4 * 4 / 0.1)         # 16 images in 100 ms
    assert t.percentile(50) == pytest.approx(25.0) and t.percentile(99) == pytest.approx(39.7)
    js = t.to_json()
    assert js["iters"] == 4 and js["latency_ms"]["p90"] == pytest.approx(37.0)


def test_bench_against_baseline_on_torch():
    model = tiny_vit(0.5)
    base = baseline_of(model)
    g_idle, g_base = executed_gmacs(model, 32), executed_gmacs(base, 32)
    assert g_idle == pytest.approx(count_executed_macs(model, 32) / 1e9)
    assert g_idle < g_base
    result = bench_against_baseline(TorchRunner(model, threads=1), TorchRunner(base, threads=1), img_size=32,
                                    gmacs_idle=g_idle, gmacs_baseline=g_base, batch=2, warmup=1, iters=4, rounds=2)
    assert len(result.idle.latencies_ms) == len(result.baseline.latencies_ms) == 4
    assert result.idle.throughput > 0 and result.baseline.throughput > 0
    assert result.mac_ratio == pytest.approx(g_base / g_idle)
    assert result.speedup == pytest.approx(result.idle.throughput / result.baseline.throughput)
    assert result.efficiency == pytest.approx(result.speedup / result.mac_ratio)
    setup = result.to_json()["setup"]
    assert setup["batch"] == 2 and setup["iters"] == 4 and setup["backend"] == "torch" and setup["threads"] == 1
    assert "cpu" in setup and "torch" in setup


def test_bench_rejects_bad_figures():
    with pytest.raises(ValueError):
        bench_against_baseline(None, None, img_size=32, gmacs_idle=0.0, gmacs_baseline=1.0)
    with pytest.raises(ValueError):
        time_rounds({}, np.zeros((1, 3, 4, 4)), iters=0)
