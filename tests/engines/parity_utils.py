"""Run fp32 vs converted ONNX on ONNX Runtime CPU: logits cosine, top-1 and selection agreement."""
import numpy as np
import onnx


def with_topk_outputs(path, out_path):
    """Copy of the ONNX with every TopK's indices as extra graph outputs (selection agreement)."""
    model = onnx.load(path)
    for node in model.graph.node:
        if node.op_type == "TopK":
            model.graph.output.append(onnx.helper.make_tensor_value_info(node.output[1], onnx.TensorProto.INT64, None))
    onnx.save(model, out_path)
    return out_path


def run_ort(path, x):
    import onnxruntime as ort
    from idlevit.runtime.ort_runner import X64_QUANT_PRECISION
    opts = ort.SessionOptions()
    opts.add_session_config_entry(X64_QUANT_PRECISION, "1")  # int8 GEMMs as TensorRT does them (no saturation)
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def compare(ref, test):
    """(min cosine, top-1 agreement, [selection agreement per TopK]) of two run_ort results."""
    a, b = ref[0].astype(np.float64), test[0].astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    top1 = float((a.argmax(1) == b.argmax(1)).mean())
    sel = [float(np.mean([len(set(i) & set(j)) / len(i) for i, j in zip(ri, ti)])) for ri, ti in zip(ref[1:], test[1:])]
    return float(cos.min()), top1, sel
