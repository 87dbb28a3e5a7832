"""Write the small bundled example inputs of inference.py from scikit-image's sample images.

    python scripts/make_examples.py [--out examples]

Makes, from 160 x 160 centre crops (deterministic: fixed noise seed, OpenCV's JPEG encoder):
    <out>/<gray|color>/clean/   ground truths, 8-bit PNG (for inference.py --gt)
    <out>/<gray|color>/noisy/   Gaussian noise sigma = 25, rounded and clipped to uint8 PNG: 2 gray, 1 colour
    <out>/<gray|color>/jpeg/    JPEG files: coffee_gray q10, astronaut_color q10, rocket_color q20
Gray and colour live apart because each needs its own model.
Each degraded image has the same name stem as its ground truth (<sample>_<gray|color>).
"""
import argparse
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vheatir.data.degradations import add_gaussian_noise  # noqa: E402
from vheatir.data.samples import sample_image  # noqa: E402

SIZE = 160
SIGMA = 25
SEED = 0
NOISY = (('camera', True), ('rocket', True), ('chelsea', False))        # (sample, gray)
JPEG = (('coffee', True, 10), ('astronaut', False, 10), ('rocket', False, 20))  # (sample, gray, quality)


def centre_crop(name: str, gray: bool) -> np.ndarray:
    """SIZE x SIZE centre crop of a scikit-image sample: uint8 (H, W) gray or (H, W, 3) RGB."""
    img = sample_image(name, gray)
    top, left = (img.shape[0] - SIZE) // 2, (img.shape[1] - SIZE) // 2
    return img[top:top + SIZE, left:left + SIZE]


def write(path: str, img: np.ndarray, params=(cv2.IMWRITE_PNG_COMPRESSION, 9)) -> None:
    """Write uint8 gray or RGB ``img`` with OpenCV (which wants BGR); PNGs compressed hardest."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    if not cv2.imwrite(path, bgr, list(params)):
        raise OSError(f'could not write {path}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='examples', help='output folder (default examples)')
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    for name, gray in NOISY:
        clean = centre_crop(name, gray)
        stem = f'{name}_{"gray" if gray else "color"}'
        mode = 'gray' if gray else 'color'
        write(os.path.join(args.out, mode, 'clean', f'{stem}.png'), clean)
        noisy = add_gaussian_noise(clean.astype(np.float32) / 255.0, SIGMA, rng)
        # Files hold 8-bit values, so the noise is rounded and clipped here (the benchmark keeps floats).
        write(os.path.join(args.out, mode, 'noisy', f'{stem}.png'), np.clip(np.rint(noisy * 255.0), 0, 255).astype(np.uint8))
    for name, gray, quality in JPEG:
        clean = centre_crop(name, gray)
        stem = f'{name}_{"gray" if gray else "color"}'
        mode = 'gray' if gray else 'color'
        write(os.path.join(args.out, mode, 'clean', f'{stem}.png'), clean)
        # Encode once and store the bytes: decoding and re-encoding would compress twice.
        write(os.path.join(args.out, mode, 'jpeg', f'{stem}.jpg'), clean, (cv2.IMWRITE_JPEG_QUALITY, quality))

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f'wrote {len(NOISY)} noisy, {len(JPEG)} JPEG and {len(NOISY) + len(JPEG)} clean images '
          f'under {args.out} ({total / 1024:.0f} KB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
