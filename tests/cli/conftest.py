from tests.calibration.conftest import photo_folder  # noqa: F401
from tests.engines.conftest import tiny_calib, tiny_onnx  # noqa: F401
