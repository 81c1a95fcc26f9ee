"""The Triton python-backend model (`TritonPythonModel`) that idle-deploy's model.py re-exports.

It runs the toolkit's own runner (ONNX Runtime or OpenVINO on CPU, TensorRT on a GPU). Each request may
name its keep ratio as a request parameter (`keep_ratio`); otherwise, with a p99 target in the config,
a KeepRatioController picks it from the load, else the highest ratio served. Requests of one
dynamic-batcher batch that share a ratio run as one batch. Only the python stub imports
`triton_python_backend_utils`, so this module imports it when Triton calls in.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

import numpy as np

from ..models.schedule import check_keep_ratio
from .controller import KeepRatioController, ServiceClock
from .repository import RATIO_OUTPUT
from .served_model import ServedModel, serve_files

RATIO_PARAMETER = "keep_ratio"


def requested_ratio(parameters_json: str) -> Optional[float]:
    """The `keep_ratio` request parameter (a number or its text), or None when absent."""
    params = json.loads(parameters_json or "{}")
    if RATIO_PARAMETER not in params:
        return None
    try:
        return check_keep_ratio(params[RATIO_PARAMETER])
    except ValueError as e:
        raise ValueError(f"request parameter keep_ratio: {e}") from None


class TritonPythonModel:
    """Triton's python-backend entry points: initialize, execute, finalize."""

    def initialize(self, args: Dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        folder = os.path.join(args["model_repository"], args["model_version"])
        files = {ratio: os.path.join(folder, name) for ratio, name in json.loads(params["files"]).items()}
        threads = int(params["threads"]) if params.get("threads") else None
        lowest = float(params.get("min_keep_ratio", 0.5))
        self.model: ServedModel = serve_files(files, params.get("runner", "ort"), threads, lowest)
        self.max_batch = int(config.get("max_batch_size", 0))
        self.input_name = config["input"][0]["name"]
        self.output_names = [o["name"] for o in config["output"] if o["name"] != RATIO_OUTPUT]
        ladder = [r for r in self.model.ratios if r >= lowest - 1e-9] or self.model.ratios[-1:]
        self.controller = (KeepRatioController(float(params["p99_target_ms"]), ladder)
                           if params.get("p99_target_ms") else None)
        self.default_ratio = (self.model.nearest_ratio(float(params["keep_ratio"])) if params.get("keep_ratio")
                              else self.model.default_ratio)
        self.clock = ServiceClock()

    def current_ratio(self) -> float:
        return self.model.nearest_ratio(self.controller.ratio) if self.controller else self.default_ratio

    def execute(self, requests) -> List:
        import triton_python_backend_utils as pb_utils
        start = self.clock.now()
        responses: List = [None] * len(requests)
        groups: Dict[float, List[int]] = {}
        images, chosen = [], 0
        for n, request in enumerate(requests):
            images.append(pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy())
            try:
                asked = requested_ratio(request.parameters())
                ratio = self.model.check_ratio(asked) if asked is not None else self.current_ratio()
                chosen += asked is None
            except Exception as e:  # a bad parameter fails that request only
                responses[n] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(e)))
                continue
            groups.setdefault(ratio, []).append(n)
        for ratio, members in groups.items():
            batch = np.concatenate([images[n] for n in members])
            outputs = self.model.infer(batch, ratio)
            offset = 0
            for n in members:
                rows = slice(offset, offset + len(images[n]))
                offset += len(images[n])
                tensors = [pb_utils.Tensor(name, np.ascontiguousarray(outputs[name][rows]))
                           for name in self.output_names]
                tensors.append(pb_utils.Tensor(RATIO_OUTPUT, np.full((len(images[n]), 1), ratio, np.float32)))
                responses[n] = pb_utils.InferenceResponse(output_tensors=tensors)
        if self.controller is not None:  # the controller learns from the requests it chose the ratio for
            latencies = self.clock.latencies(start, self.clock.now(), chosen)
            if chosen:
                self.controller.record(latencies, full=self.max_batch > 0 and len(requests) >= self.max_batch)
        return responses

    def finalize(self) -> None:
        self.model.close()
