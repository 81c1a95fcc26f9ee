"""Write images of idle-train's synthetic task as PNG files, for idle-calibrate and idle-runtime parity.

The INT8 check on a trained checkpoint (benchmarks/int8_trained.sh) calibrates on one seed's images
and measures parity on another's, both disjoint from the images the checkpoint was trained on.
Usage: python benchmarks/write_synthetic.py OUT_DIR -n 256 --seed 100 [--img-size 224 --num-classes 10]
"""
import argparse
import os

from PIL import Image

from idlevit.training.synthetic import render_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("-n", "--num-images", type=int, default=256)
    parser.add_argument("--seed", type=int, default=100, help="idle-train uses 2*s and 2*s+1 for --synthetic-seed s")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=10)
    args = parser.parse_args()
    images, labels = render_images(args.num_images, args.num_classes, args.img_size, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(os.path.join(args.out_dir, f"{i:05d}_class{label}.png"))
    print(f"wrote {len(images)} images ({args.img_size}px, {args.num_classes} classes, seed {args.seed}) "
          f"to {args.out_dir}")


if __name__ == "__main__":
    main()
