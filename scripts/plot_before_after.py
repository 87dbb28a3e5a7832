"""Before/after crops for the README: degraded input | vHeatIR | ground truth, with PSNR.

    python scripts/plot_before_after.py --task denoise --image datasets/BSD68/test011.png --level 25 \\
        --out docs/before_after_denoise_gray.png
    python scripts/plot_before_after.py --task jpeg --image datasets/Classic5/barbara.png --level 10 \\
        --out docs/before_after_jpeg_gray.png
    python scripts/plot_before_after.py --task denoise --color --image datasets/CBSD68/108005.png --level 25 \\
        --out docs/before_after_denoise_color.png
    python scripts/plot_before_after.py --task jpeg --color --image datasets/LIVE1/parrots.png --level 10 \\
        --out docs/before_after_jpeg_color.png

The input is made exactly as the benchmark makes it (vheatir/benchmark.py: Gaussian noise
from numpy seed 0, or OpenCV JPEG at quality --level; gray JPEG uses the BT.601 Y channel of
a colour file); the whole image is restored and PSNRs are those of the whole image; the
crop (--crop TOP,LEFT,SIZE in pixels, default the centre) is only what is shown.
"""
import argparse
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import vheatir  # noqa: E402,F401
from vheatir.benchmark import make_pair, network_restorer, score  # noqa: E402
from vheatir.imageio import to_uint8  # noqa: E402
from vheatir.weights import default_weights, load_network, size_label  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--task', choices=['denoise', 'jpeg'], required=True)
    p.add_argument('--image', required=True, help='ground-truth image file')
    p.add_argument('--level', type=float, required=True, help='sigma (0-255 scale) or JPEG quality')
    p.add_argument('--color', action='store_true', help='colour model and colour input')
    p.add_argument('--crop', default=None, help='TOP,LEFT,SIZE in pixels (default: a centred square)')
    p.add_argument('--weights', default=None, help='vHeatIR weights (default: the shipped ones)')
    p.add_argument('--out', required=True, help='PNG to write')
    args = p.parse_args()
    color = 'color' if args.color else 'gray'
    try:
        if not os.path.isfile(args.image):
            raise ValueError(f'{args.image}: no such file (run `python datasets/prepare.py`?)')
        gt, lq = make_pair(args.image, args.task, args.color, args.level)
        path = args.weights or default_weights(args.task, color)
        net, info = load_network(path)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    out = to_uint8(network_restorer(net, args.task, args.level, torch.device('cpu'))(lq))
    lq8 = to_uint8(lq)
    h, w = gt.shape[:2]
    if args.crop:
        top, left, size = (int(v) for v in args.crop.split(','))
    else:
        size = min(h, w, 160)
        top, left = (h - size) // 2, (w - size) // 2
    if top < 0 or left < 0 or top + size > h or left + size > w:
        print(f'error: --crop {args.crop} falls outside the {w}x{h} image {args.image}', file=sys.stderr)
        return 2

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    level = f'σ={args.level:g}' if args.task == 'denoise' else f'q={args.level:g}'
    panels = [(f'input ({level}): {score(lq8, gt, args.task)["psnr"]:.2f} dB', lq8),
              (f'{size_label(info["meta"].get("option"))}: {score(out, gt, args.task)["psnr"]:.2f} dB', out),
              ('ground truth', gt)]
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6))
    for ax, (title, img) in zip(axes, panels):
        crop = img[top:top + size, left:left + size]
        ax.imshow(crop[..., 0] if crop.shape[2] == 1 else crop, cmap='gray', vmin=0, vmax=255,
                  interpolation='nearest')
        ax.set_title(title, fontsize=9)
        ax.axis('off')
    fig.suptitle(f'{os.path.basename(args.image)}, {args.task} {color} (PSNR of the whole image; '
                 f'crop {size}x{size} at {top},{left})', fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
