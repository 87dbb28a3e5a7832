"""Real camera noise: PSNR of a colour denoiser on CC15 at the automatic σ and at fixed σ values.

    python scripts/real_noise.py --sigmas 5,8,11,14,18,24 --out docs/results/real_noise/CC15_sigma_sweep.json

For every noisy/clean pair of ``--root`` (default datasets/CC15: ``noisy/X.png`` beside ``clean/X.png``)
it records the input's PSNR, the σ that ``--sigma auto`` estimates (``vheatir.api.estimate_noise_sigma``)
and the PSNR of ``vheatir.restore`` at each fixed σ, on uint8 RGB, whole image. Prints a table of
the means and writes the per-image rows as JSON (after each image, so a killed run keeps its rows).
"""
import argparse
import glob
import json
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import vheatir  # noqa: E402,F401  (before basicsr: the torchvision alias)
from basicsr.metrics import calculate_psnr  # noqa: E402
from vheatir import restore  # noqa: E402
from vheatir.api import estimate_noise_sigma  # noqa: E402
from vheatir.compat import atomic_write  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default=os.path.join('datasets', 'CC15'))
    p.add_argument('--sigmas', default='5,8,11,14,18,24', help='fixed noise levels to try (0-255 scale)')
    p.add_argument('--weights', default=None, help='colour denoising weights (default: the shipped ones)')
    p.add_argument('--out', default=os.path.join('docs', 'results', 'real_noise', 'CC15_sigma_sweep.json'))
    args = p.parse_args()
    sigmas = [float(s) for s in args.sigmas.split(',') if s.strip()]
    pairs = [(n, n.replace(f'{os.sep}noisy{os.sep}', f'{os.sep}clean{os.sep}'))
             for n in sorted(glob.glob(os.path.join(args.root, 'noisy', '*.png')))]
    if not pairs or not all(os.path.isfile(c) for _, c in pairs):
        print(f'error: {args.root}: needs noisy/*.png with a clean/ image of the same name', file=sys.stderr)
        return 2
    rows = {}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    for noisy_path, clean_path in pairs:
        noisy = np.ascontiguousarray(cv2.imread(noisy_path)[..., ::-1])
        clean = cv2.imread(clean_path)   # BGR; compared as BGR below
        row = {'input': calculate_psnr(noisy[..., ::-1], clean, 0), 'auto_sigma': estimate_noise_sigma(noisy)}
        for s in sigmas:
            out = restore(noisy, sigma=s, weights=args.weights)
            row[f'{s:g}'] = calculate_psnr(out[..., ::-1], clean, 0)
        rows[os.path.basename(noisy_path)] = row
        print(os.path.basename(noisy_path), ' '.join(f'{k} {v:.2f}' for k, v in row.items()), flush=True)
        payload = {'command': ' '.join(['python'] + sys.argv), 'weights': args.weights or 'shipped', 'images': rows}
        atomic_write(args.out, lambda f: f.write(json.dumps(payload, indent=1).encode()))
    mean_in = np.mean([r['input'] for r in rows.values()])
    print(f'\n| σ | PSNR dB | gain over the input |\n|---|---|---|\n| input | {mean_in:.2f} | |')
    for s in sigmas:
        m = np.mean([r[f'{s:g}'] for r in rows.values()])
        print(f'| {s:g} | {m:.2f} | {m - mean_in:+.2f} |')
    print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
