"""Write the parity photographs (photos/) and calibration crops (calib_photos/) from scikit-image's bundled images."""
import os, numpy as np, skimage.data as D
from PIL import Image
names = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field",
         "immunohistochemistry", "retina", "camera", "coins", "page", "brick", "grass", "gravel", "colorwheel",
         "cat", "logo", "moon", "text"]
os.makedirs("photos", exist_ok=True); os.makedirs("calib_photos", exist_ok=True)
rs = np.random.RandomState(1)
for name in [n for n in names if hasattr(D, n)]:
    im = Image.fromarray(getattr(D, name)()).convert("RGB"); im.save(f"photos/{name}.png")
    for k in range(8):
        w, h = im.size; s = rs.uniform(0.3, 1.0); cw, ch = int(w * s), int(h * s)
        x0, y0 = rs.randint(0, w - cw + 1), rs.randint(0, h - ch + 1)
        im.crop((x0, y0, x0 + cw, y0 + ch)).save(f"calib_photos/{name}_{k}.png")
