"""Real camera noise: how the colour denoiser does on CC15 with the default command and at fixed σ.

    python scripts/real_noise.py run --bm3d       # writes docs/results/real_noise/CC15.json, prints the table
    python scripts/real_noise.py table --readme README.md --docs docs/real_noise.md   # the CC15 table, from it
    python scripts/real_noise.py calibrate        # fits CORRELATED_NOISE_GAIN (_GRAY from a --gray JSON), per camera held out
    python scripts/real_noise.py run --gray --bm3d --out docs/results/real_noise/CC15_gray.json \
        --docs docs/real_noise.md                 # the same as gray photos: the real_noise:CC15_gray block

``run``: for every noisy/clean pair of ``--root`` (default datasets/CC15: ``noisy/X.png`` beside
``clean/X.png``) it records the input's PSNR, the statistics ``--sigma auto`` reads
(``vheatir.api``: s1 white-noise sigma, s2 flat-block sigma at scale 2, the resulting sigma), the
PSNR of ``vheatir.restore`` with its defaults (what ``inference.py --task denoise`` does), at each
fixed σ of ``--sigmas``, and with ``--bm3d`` CBM3D at the estimated σ; uint8 RGB, whole image.
``--gray``: both images of each pair turned into BT.601 luma first (gray photos with camera noise;
the gray model and BM3D restore them).
Rows are written after each image, so a killed run keeps them.

``calibrate``: fits the gain g of ``sigma = g * s2`` that maximises the mean PSNR, interpolating
each image's PSNR over the fixed σ values (cubic in log σ), on all images and with each camera
(the file-name prefix) held out in turn; prints the gains and the held-out PSNR gain over the input.
"""
import argparse
import glob
import json
import os
import sys
from typing import Dict, List

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import vheatir  # noqa: E402,F401  (before basicsr: the torchvision alias)
from basicsr.metrics import calculate_psnr  # noqa: E402
from vheatir import restore  # noqa: E402
from vheatir.api import estimate_noise, flat_noise_sigma, select_weights, white_noise_sigma  # noqa: E402
from vheatir.benchmark import bm3d_restorer  # noqa: E402
from vheatir.atomic import atomic_write  # noqa: E402
from vheatir.docblocks import rewrite_files  # noqa: E402
from vheatir.imageio import to_uint8  # noqa: E402
from vheatir.weights import SMALL, read_weights, size_label  # noqa: E402

DEFAULT_OUT = os.path.join('docs', 'results', 'real_noise', 'CC15.json')


def run(args: argparse.Namespace) -> int:
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
        if args.gray:
            noisy, clean = cv2.cvtColor(noisy, cv2.COLOR_RGB2GRAY), cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY)

        def psnr(restored: np.ndarray) -> float:
            return calculate_psnr(restored if args.gray else restored[..., ::-1], clean, 0)

        # The fixed-sigma runs use the model the default command picks for this image (the
        # camera-noise one where it ships), so every column describes the same model.
        sigma, kind = estimate_noise(noisy)
        weights = args.weights or select_weights(noisy, 'denoise', noise=kind)
        row = {'input': psnr(noisy), 's1': white_noise_sigma(noisy), 's2': flat_noise_sigma(noisy, 2),
               'auto_sigma': sigma, 'auto': psnr(restore(noisy, sigma=sigma, weights=weights))}
        if args.bm3d:
            planes = noisy.reshape(*noisy.shape[:2], -1).astype(np.float32) / 255.0   # (H, W, C)
            row['bm3d_auto'] = psnr(to_uint8(bm3d_restorer(row['auto_sigma'])(planes)).reshape(noisy.shape))
        for s in sigmas:
            row[f'{s:g}'] = psnr(restore(noisy, sigma=s, weights=weights))
        row['weights'] = os.path.relpath(weights)
        row['model'] = size_label(read_weights(weights)['meta'].get('option'))
        rows[os.path.basename(noisy_path)] = row
        print(os.path.basename(noisy_path),
              ' '.join(f'{k} {v:.2f}' for k, v in row.items() if k not in ('weights', 'model')),
              row['weights'], flush=True)
        payload = {'command': ' '.join(['python'] + sys.argv), 'weights': args.weights or 'shipped',
                   'gray': args.gray, 'sigmas': sigmas, 'images': rows}
        atomic_write(args.out, lambda f: f.write(json.dumps(payload, indent=1).encode()))

    text = cc15_table(rows, sigmas, args.gray)
    print('\n' + text)
    print('\n| σ | ' + ' | '.join(f'{s:g}' for s in sigmas) + ' |\n|---|' + '---|' * len(sigmas))
    base = float(np.mean([r['input'] for r in rows.values()]))
    print('| gain over the input | ' + ' | '.join(
        f"{np.mean([r[f'{s:g}'] for r in rows.values()]) - base:+.2f}" for s in sigmas) + ' |')
    print(f'\nwrote {args.out}')
    return write_tables(args, text, args.gray)


def cc15_table(rows: Dict[str, dict], sigmas: List[float], gray: bool = False) -> str:
    """The CC15 table (Markdown): mean PSNR of the input, CBM3D (BM3D when ``gray``) where measured,
    the default command, the best fixed σ and the per-image oracle over ``sigmas``, with each one's
    gain over the input. Our rows are named by the size of the model that restored the photos
    (rows written before that was recorded were all vHeatIR-S)."""
    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows.values()]))

    ours = '/'.join(sorted({r.get('model', SMALL) for r in rows.values()}))

    best = float(np.mean([max(r[f'{s:g}'] for s in sigmas) for r in rows.values()]))
    best_fixed = max(sigmas, key=lambda s: mean(f'{s:g}'))
    lines = [('noisy input', mean('input'))]
    if all('bm3d_auto' in r for r in rows.values()):
        lines.append((f'{"" if gray else "C"}BM3D at the estimated σ', mean('bm3d_auto')))
    lines += [(f'{ours}, default command (σ auto)', mean('auto')),
              (f'{ours}, best fixed σ ({best_fixed:g})', mean(f'{best_fixed:g}')),
              (f'{ours}, best σ per image (oracle)', best)]
    base = mean('input')
    title = f'CC15 (15 real noisy photos{", as gray" if gray else ""})'
    out = [f'| {title} | PSNR dB | gain over the input |', '|---|---|---|']
    for name, value in lines:
        gain = '' if name == 'noisy input' else f'{value - base:+.2f}'
        out.append(f'| {name} | {value:.2f} | {gain} |')
    return '\n'.join(out)


def write_tables(args: argparse.Namespace, text: str, gray: bool = False) -> int:
    """Rewrite the ``real_noise:CC15`` block (``real_noise:CC15_gray`` when ``gray``) of ``--readme``
    and ``--docs`` (those given) with the table ``text``; 2 with a one-line error when a file lacks
    the block."""
    targets = [(path, {'CC15_gray' if gray else 'CC15': text}) for path in (args.docs, args.readme) if path]
    try:
        messages = rewrite_files(targets, 'real_noise')
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if messages:
        print('\n'.join(messages))
    return 0


def table(args: argparse.Namespace) -> int:
    """``table`` mode: the CC15 table from the JSON of an earlier ``run``, into the given files."""
    try:
        with open(args.out) as f:
            payload = json.load(f)
    except (OSError, ValueError) as e:
        print(f'error: {args.out}: cannot read the results of a run ({e})', file=sys.stderr)
        return 2
    gray = payload.get('gray', False)
    text = cc15_table(payload['images'], payload['sigmas'], gray)
    print(text)
    return write_tables(args, text, gray)


def calibrate(args: argparse.Namespace) -> int:
    with open(args.out) as f:
        data = json.load(f)
    sigmas = np.array(data['sigmas'])
    rows = []
    for name, r in data['images'].items():
        curve = np.polyfit(np.log(sigmas), [r[f'{s:g}'] for s in sigmas], 3)
        rows.append((name.split('_')[0], r['s2'], curve, r['input']))
    gains = np.linspace(0.5, 5.0, 91)

    def mean_gain(g: float, subset: list) -> float:
        # Clipped to the measured σ range: the cubic is not trusted outside it.
        return float(np.mean([np.polyval(c, np.log(np.clip(g * s2, sigmas.min(), sigmas.max()))) - inp
                              for _, s2, c, inp in subset]))

    def fit(subset: list) -> float:
        return float(gains[np.argmax([mean_gain(g, subset) for g in gains])])

    g_all = fit(rows)
    print(f'all images: gain {g_all:.2f}, PSNR gain over the input {mean_gain(g_all, rows):+.2f} dB (interpolated)')
    held = []
    for camera in sorted({r[0] for r in rows}):
        train, test = [r for r in rows if r[0] != camera], [r for r in rows if r[0] == camera]
        g = fit(train)
        held += [mean_gain(g, test)] * len(test)
        print(f'{camera} held out: gain {g:.2f} fitted on the others, its PSNR gain {mean_gain(g, test):+.2f} dB')
    print(f'leave-one-camera-out mean PSNR gain {np.mean(held):+.2f} dB (interpolated)')
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('mode', choices=['run', 'table', 'calibrate'])
    p.add_argument('--root', default=os.path.join('datasets', 'CC15'))
    p.add_argument('--sigmas', default='5,8,11,14,18,24', help='fixed noise levels to try (0-255 scale)')
    p.add_argument('--weights', default=None, help='denoising weights (default: the shipped ones)')
    p.add_argument('--gray', action='store_true', help='run: restore the BT.601 luma of each pair')
    p.add_argument('--bm3d', action='store_true', help='also CBM3D (PyPI bm3d) at the estimated σ')
    p.add_argument('--out', default=DEFAULT_OUT, help=f'JSON written by run, read by calibrate (default {DEFAULT_OUT})')
    p.add_argument('--readme', default=None,
                   help='run, table: rewrite the real_noise:CC15 block (CC15_gray with --gray) of this file')
    p.add_argument('--docs', default=None, help='run, table: the same in this file (docs/real_noise.md)')
    args = p.parse_args()
    return {'run': run, 'table': table, 'calibrate': calibrate}[args.mode](args)


if __name__ == '__main__':
    sys.exit(main())
