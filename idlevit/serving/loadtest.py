"""A bounded closed-loop load on the python model of a local tritonserver: throughput, p50/p99, keep ratio.

Each mode (a keep ratio pinned per request, or "adaptive": the server's controller chooses) gets its
own server start, so no mode inherits another's controller state or warm caches. A mode runs the
same phases: `clients` threads, each with its own gRPC client, send a request, wait for the answer,
send the next, until the phase's time or request budget is spent. Every request and the server are
on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import UserError
from ..optional_deps import require
from .server import TritonInstall, TritonServer

ADAPTIVE = "adaptive"
REQUEST_TIMEOUT_S = 60.0


@dataclass
class LoadPlan:
    phases: Sequence[int] = (1, 4, 1)      # concurrent clients per phase
    phase_seconds: float = 20.0
    max_requests: int = 2000               # per phase
    batch_size: int = 1                    # images per request

    def check(self) -> None:
        if not self.phases or min(self.phases) < 1 or max(self.phases) > 64:
            raise UserError(f"--phases {list(self.phases)}: give 1 to 64 clients per phase")
        if not 0 < self.phase_seconds <= 600:
            raise UserError(f"--phase-seconds {self.phase_seconds} must be in (0, 600]")
        if self.max_requests < 1 or self.batch_size < 1:
            raise UserError("--max-requests and --batch-size must be at least 1")


@dataclass
class Sample:
    sent_s: float          # since the mode started
    latency_ms: float
    keep_ratio: float
    phase: int


@dataclass
class ModeResult:
    mode: str
    samples: List[Sample]
    phase_bounds: List[float]           # start time of each phase, then the end
    errors: int = 0

    def phase_rows(self, plan: LoadPlan) -> List[List]:
        rows = []
        for p, clients in enumerate(plan.phases):
            got = [s for s in self.samples if s.phase == p]
            seconds = self.phase_bounds[p + 1] - self.phase_bounds[p]
            rows.append([self.mode, f"{p + 1} ({clients} clients)", len(got)] + _stats(got, seconds, plan.batch_size))
        seconds = self.phase_bounds[-1] - self.phase_bounds[0]
        rows.append([self.mode, "all", len(self.samples)] + _stats(self.samples, seconds, plan.batch_size))
        return rows


def _stats(samples: List[Sample], seconds: float, batch: int) -> List:
    if not samples:
        return ["-", "-", "-", "-"]
    lat = np.array([s.latency_ms for s in samples])
    return [f"{len(samples) * batch / seconds:.2f}", f"{np.percentile(lat, 50):.1f}", f"{np.percentile(lat, 99):.1f}",
            f"{np.mean([s.keep_ratio for s in samples]):.2f}"]


@dataclass
class LoadReport:
    plan: LoadPlan
    results: List[ModeResult]
    setup: Dict[str, str] = field(default_factory=dict)
    TABLE_HEADERS = ("mode", "phase", "requests", "img/s", "p50 ms", "p99 ms", "mean keep ratio")

    def table_rows(self) -> List[List]:
        return [row for r in self.results for row in r.phase_rows(self.plan)]

    def describe(self) -> str:
        s = self.setup
        return (f"closed loop over gRPC on 127.0.0.1: phases of {list(self.plan.phases)} clients, "
                f"{self.plan.phase_seconds:g} s or {self.plan.max_requests} requests each, batch {self.plan.batch_size} "
                f"per request; one fresh tritonserver {s.get('server', '')} per mode; model {s.get('model')} "
                f"({s.get('served')}); p99 target {s.get('p99_target_ms', 'none')} ms")

    def to_json(self) -> dict:
        return {"plan": asdict(self.plan), "setup": self.setup,
                "table": [dict(zip(self.TABLE_HEADERS, row)) for row in self.table_rows()],
                "modes": [{"mode": r.mode, "errors": r.errors, "phase_bounds": r.phase_bounds,
                           "samples": [asdict(s) for s in r.samples]} for r in self.results]}


def python_model_parameters(repository: str, model: str) -> Dict[str, str]:
    """The string parameters of a python model's config.pbtxt (read as text: no tritonclient needed)."""
    if not os.path.isdir(repository):
        raise UserError(f"-r {repository} is not a folder: pass the repository idle-deploy triton wrote")
    path = os.path.join(repository, model, "config.pbtxt")
    if not os.path.isfile(path):
        raise UserError(f"{path} not found: write the repository with idle-deploy triton, or pass --model")
    text = open(path).read()
    if 'backend: "python"' not in text:
        raise UserError(f"{model} in {repository} is not the python-backend model: pass the model idle-deploy "
                        "triton named with --name")
    found = re.findall(r'parameters \{ key: "([^"]+)" value \{ string_value: ("(?:[^"\\]|\\.)*") \} \}', text)
    return {key: json.loads(value) for key, value in found}   # idle-deploy writes them JSON-quoted


def _modes(modes: Sequence[str], params: Dict[str, str]) -> List[str]:
    from ..models.schedule import check_keep_ratio
    out = []
    for mode in modes:
        if mode == ADAPTIVE:
            if "p99_target_ms" not in params:
                raise UserError("mode 'adaptive' needs a model deployed with a latency target: "
                                "idle-deploy triton ... --p99-target-ms MS")
            out.append(mode)
            continue
        try:
            ratio = check_keep_ratio(mode)
        except ValueError as e:
            raise UserError(f"mode {mode!r}: {e}, or 'adaptive'") from None
        out.append(f"{ratio:g}")
    return out


def drive(url: str, model: str, input_shape: Sequence[int], mode: str, plan: LoadPlan) -> ModeResult:
    """Run the plan's phases against a ready server; every request bounded by REQUEST_TIMEOUT_S."""
    import tritonclient.grpc as grpcclient
    x = np.random.default_rng(0).standard_normal((plan.batch_size, *input_shape), dtype=np.float32)
    params = {} if mode == ADAPTIVE else {"keep_ratio": float(mode)}
    samples: List[Sample] = []
    lock = threading.Lock()
    errors = [0]
    t0 = time.perf_counter()
    bounds = [0.0]

    def client_loop(phase: int, deadline: float, budget: List[int]):
        client = grpcclient.InferenceServerClient(url)
        inp = grpcclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                sent = time.perf_counter()
                try:
                    res = client.infer(model, [inp], parameters=params, client_timeout=REQUEST_TIMEOUT_S)
                except Exception:  # a timeout or server error: counted, and the load goes on
                    with lock:
                        errors[0] += 1
                    continue
                done = time.perf_counter()
                with lock:
                    samples.append(Sample(sent - t0, (done - sent) * 1e3, float(res.as_numpy("keep_ratio")[0, 0]), phase))
        finally:
            client.close()

    for phase, clients in enumerate(plan.phases):
        deadline = time.perf_counter() + plan.phase_seconds
        budget = [plan.max_requests]
        threads = [threading.Thread(target=client_loop, args=(phase, deadline, budget), daemon=True)
                   for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=plan.phase_seconds + REQUEST_TIMEOUT_S + 5)
        bounds.append(time.perf_counter() - t0)
    samples.sort(key=lambda s: s.sent_s)
    return ModeResult(mode, samples, bounds, errors[0])


def run_modes(repository: str, model: str, modes: Sequence[str], plan: LoadPlan,
              python: Optional[str] = None, warmup: int = 3, startup_timeout: float = 300.0) -> LoadReport:
    """Start a server per mode, warm it up, drive the plan, stop it; the report has every request."""
    plan.check()
    params = python_model_parameters(repository, model)
    modes = _modes(modes, params)
    install = TritonInstall.find(python)
    from .repository import read_onnx_io
    files = json.loads(params["files"])
    first = os.path.join(repository, model, "1", next(iter(files.values())))
    input_shape = read_onnx_io(first).image_input.dims[1:] if first.endswith(".onnx") else None
    if input_shape is None:
        raise UserError("the load test drives ONNX-backed python models: deploy with --runner ort or openvino")
    # the client library is imported before any server starts: a Ctrl-C inside an import ends the process at once
    # (see idlevit_launch), which would leave a running server behind
    require("tritonclient.grpc")
    results = []
    for mode in modes:
        with TritonServer(repository, models=[model], install=install, startup_timeout=startup_timeout) as server:
            warm = LoadPlan(phases=(1,), phase_seconds=REQUEST_TIMEOUT_S, max_requests=warmup, batch_size=plan.batch_size)
            drive(server.grpc_url, model, input_shape, mode, warm)
            results.append(drive(server.grpc_url, model, input_shape, mode, plan))
    setup = {"server": f"(nvidia-pytriton {install.version})", "model": model,
             "served": ", ".join(f"{os.path.basename(v)}" + (f" at r = {k}" if k else "") for k, v in files.items()),
             "runner": params.get("runner", "ort"), "threads": params.get("threads", "default"),
             "p99_target_ms": params.get("p99_target_ms", "none"), "min_keep_ratio": params.get("min_keep_ratio", "")}
    return LoadReport(plan, results, setup)
