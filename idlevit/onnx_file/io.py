"""Reading and writing ONNX files, with one set of one-line errors for a missing or unreadable file."""
from __future__ import annotations

import os

import onnx

from ..errors import UserError
from ..fileio import atomic_output, check_input_file

# protobuf cannot serialise a message of 2 GiB or more: bigger models keep their weights in a .data file
MAX_PROTO_BYTES = 1_900_000_000


def check_onnx_file(path: str) -> None:
    """UserError when `path` is not a file (before a runtime or onnx.load reports it less clearly)."""
    check_input_file(path, "ONNX file", "pass the path of a file written by idle-export")


def load_onnx(path: str, load_external_data: bool = True) -> onnx.ModelProto:
    """onnx.load with one-line errors for a missing or unreadable file."""
    check_onnx_file(path)
    try:
        return onnx.load(path, load_external_data=load_external_data)
    except Exception as e:  # protobuf DecodeError, ValueError, OSError, external-data errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path} is not a readable ONNX model ({first[:120]}): re-export it with idle-export") from None


def save_onnx(model: onnx.ModelProto, path: str) -> None:
    """Write `model` atomically (temp file + rename); big models go to one external-data file."""
    with atomic_output(path) as tmp:
        if model.ByteSize() > MAX_PROTO_BYTES:
            onnx.save(model, tmp, save_as_external_data=True, location=os.path.basename(path) + ".data")
        else:
            onnx.save(model, tmp)
