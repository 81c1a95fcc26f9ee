"""fp32 vs converted ONNX on ONNX Runtime CPU, through the project's own runner and parity metrics."""
from idlevit.runtime.ort_runner import OrtRunner
from idlevit.runtime.parity import ParityReport, Thresholds, compare_runners
from tests.onnx_cache import THREADS


def ort_parity(reference_path, candidate_path, x, keep_ratio=None) -> ParityReport:
    """Both files on ORT CPU (exact int8 kernels, TopK indices exposed), compared with no limits set.

    `keep_ratio`: both elastic files run at that ratio."""
    with OrtRunner(reference_path, threads=THREADS, selection=True).set_keep_ratio(keep_ratio) as ref, \
            OrtRunner(candidate_path, threads=THREADS, selection=True).set_keep_ratio(keep_ratio) as cand:
        return compare_runners(cand, ref, [x], Thresholds())
