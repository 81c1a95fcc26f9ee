"""PyTorch runner (CPU or CUDA, optional torch.compile, fp16 autocast on CUDA): the reference backend."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from ..errors import UserError
from ..models.elastic import stage_keep_tokens_applied
from ..models.schedule import KeepSchedule
from ..onnx_file.elastic import ElasticKeep, stage_tokens_of
from ..onnx_file.selection_outputs import selection_from_torch, selection_output_name
from .runner import Runner, TensorInfo, default_threads


class TorchRunner(Runner):
    """Runs an eval-mode model; with `selection=True` also returns `topk_indices.<i>` per idle block.

    Args:
        model: the model (IdleViT or any timm ViT), moved to `device` on load.
        device: "cpu" or "cuda" / "cuda:N".
        compile: wrap the forward in `torch.compile` (first call compiles; warm up before timing).
        fp16: autocast to fp16 (CUDA only).
        threads: intra-op threads on CPU (default: leave torch's setting as it is); restored on close.
        selection: run `forward_with_selection` and return the selected indices too.
    """
    name = "torch"

    def __init__(self, model: torch.nn.Module, *, device: str = "cpu", compile: bool = False, fp16: bool = False,
                 threads: Optional[int] = None, selection: bool = False, input_name: str = "input",
                 output_name: str = "logits"):
        super().__init__()
        self.model, self.device, self.compile, self.fp16 = model, device, compile, fp16
        self.threads = default_threads(threads) if threads is not None else None
        self.selection, self._input, self._output = selection, input_name, output_name
        self._previous_threads = None
        self._fn = None

    def _load(self) -> None:
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {self.device} needs a CUDA GPU and none is visible: use --device cpu")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise UserError(f"unknown device {self.device!r}: use cpu or cuda")
        if self.fp16 and not self.device.startswith("cuda"):
            raise UserError("fp16 autocast runs on CUDA only: drop --autocast fp16 or pass --device cuda")
        if self.selection and not hasattr(self.model, "forward_with_selection"):
            raise UserError(f"{type(self.model).__name__} is not an IdleViT: selection outputs need one")
        if self.threads:
            self._previous_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        self.model = self.model.to(self.device).eval()
        if self.selection:
            self._fn = self.model.forward_with_selection
        else:
            self._fn = torch.compile(self.model) if self.compile else self.model

    def _close(self) -> None:
        if self._previous_threads is not None:
            torch.set_num_threads(self._previous_threads)
            self._previous_threads = None
        self._fn = None

    def prepare(self, feed) -> Dict[str, Any]:
        return {k: self._tensor(v) for k, v in self._as_dict(feed).items()}

    def _tensor(self, x) -> torch.Tensor:
        t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return t.to(self.device, non_blocking=True)

    def _find_elastic(self):
        """Any IdleViT takes K per call in eager mode: 1..N per stage, its own schedule's ratio by default."""
        if not hasattr(self.model, "num_image_tokens"):
            return None
        default_ratio = KeepSchedule.of_block_ratios(self.model.keep_ratios).keep_ratio
        return ElasticKeep.full(self.model.num_image_tokens, default_ratio)

    def _infer(self, feed: Dict[str, Any]) -> Dict[str, np.ndarray]:
        x = self._tensor(feed[self._input])
        stage_k = stage_tokens_of(feed)
        schedule = stage_keep_tokens_applied(self.model, stage_k) if stage_k is not None else nullcontext()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.fp16), schedule:
            out = self._fn(x)
        if self.selection:
            logits, indices = out
            result = {self._output: logits.float().cpu().numpy()}
            for i, idx in enumerate(selection_from_torch(indices)):
                result[selection_output_name(i)] = idx
            return result
        return {self._output: out.float().cpu().numpy()}

    @property
    def input_info(self) -> Dict[str, TensorInfo]:
        size = self.model.patch_embed.img_size
        return {self._input: TensorInfo("float32", ("batch", 3, *tuple(size)))}

    @property
    def output_names(self) -> Tuple[str, ...]:
        idle = sum(k is not None for k in getattr(self.model, "keep_tokens", []))
        extra = tuple(selection_output_name(i) for i in range(idle)) if self.selection else ()
        return (self._output,) + extra

    def describe(self) -> Dict[str, Any]:
        info = {"backend": self.name, "device": self.device, "torch": torch.__version__,
                "compile": self.compile, "fp16": self.fp16}
        info["threads"] = torch.get_num_threads()
        if self.device != "cpu" and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(torch.device(self.device))
        return info
