"""Real photographs (scikit-image's bundled images) as a calibration folder; tiny ONNX fixtures."""
import pytest

from tests.engines.conftest import tiny_calib, tiny_onnx  # noqa: F401  (shared fixtures)

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """Five skimage photos as PNG/JPEG files in nested folders (one grayscale)."""
    import skimage.data
    from PIL import Image
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, name in enumerate(PHOTOS):
        folder = root / "sub" if i % 2 else root
        Image.fromarray(getattr(skimage.data, name)()).save(folder / f"{name}.{'jpg' if i % 2 else 'png'}")
    (root / "notes.txt").write_text("not an image")
    return str(root)
