"""Draw what a trained vHeatIR learned to propagate: diffusivity k and the heat kernel.

    python scripts/plot_heat.py                       # shipped gray denoiser -> docs/heat_denoise_gray_*
    python scripts/plot_heat.py --weights weights/vheatir_M_jpeg_gray.pth --out docs/heat_jpeg

Writes ``<out>_diffusivity.png``: k (px^2) against normalised frequency
r = sqrt(u^2 + v^2) / sqrt(2), with (u, v) = (n/H, m/W) in [0, 1), averaged over rings, for
four channels (lowest to highest median k) of the first block of the first group and the
last block of the last group; and ``<out>_kernel.png``: the impulse response of the heat
conduction step of those channels (IDCT(exp(-k w) DCT(delta)) on a 65 x 65 field, delta at
its centre), i.e. how far one pixel's feature spreads. A JSON beside them holds the numbers.
"""
import argparse
import json
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vheatir.heat_analysis import (SIDE, block_diffusivity, impulse_response, kernel_radius,  # noqa: E402
                                   moved_from_init, ring_profile)
from vheatir.weights import default_weights, load_network  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=None, help='vHeatIR weights (default: the shipped gray denoiser)')
    p.add_argument('--out', default='docs/heat_denoise_gray', help='output prefix (PNG files and a JSON)')
    args = p.parse_args()
    try:
        path = args.weights or default_weights('denoise', 'gray')
        net, info = load_network(path)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    last = len(net.groups) - 1
    where = {'first block, group 1': (0, 0), f'last block, group {last + 1}': (last, len(net.groups[last].blocks) - 1)}
    fig_k, axes_k = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    fig_h, axes_h = plt.subplots(2, 4, figsize=(10, 5.4))
    record = {'weights': os.path.relpath(path), 'side': SIDE, 'blocks': {},
              'moved_from_init': moved_from_init(net)}
    for row, (title, (g, b)) in enumerate(where.items()):
        k = block_diffusivity(net, g, b, SIDE)
        order = torch.argsort(k.reshape(-1, k.shape[2]).median(0).values)
        channels = [int(order[i]) for i in np.linspace(0, len(order) - 1, 4).round().astype(int)]
        r, prof = ring_profile(k)
        kernel = impulse_response(k)
        radius = kernel_radius(kernel)
        for c in channels:
            axes_k[row].semilogy(r, prof[:, c], label=f'ch {c} (rms radius {radius[c]:.1f} px)')
        axes_k[row].set(title=title, xlabel='normalised frequency r', ylabel='k [px²]' if row == 0 else None)
        axes_k[row].legend(fontsize=7)
        for col, c in enumerate(channels):
            ax = axes_h[row, col]
            ker = kernel[..., c].numpy()
            lim = np.abs(ker).max()
            ax.imshow(ker, cmap='RdBu_r', vmin=-lim, vmax=lim)
            ax.set_title(f'{title.split(",")[1].strip()} ch {c}: rms {radius[c]:.1f} px', fontsize=8)
            ax.axis('off')
        record['blocks'][title] = {'group': g, 'block': b, 'channels': channels,
                                   'rms_radius_px': {c: float(radius[c]) for c in channels},
                                   'rms_radius_px_all': {'min': float(radius.min()), 'median': float(np.median(radius)),
                                                         'max': float(radius.max())},
                                   'ring_r': r.tolist(), 'ring_k': {c: prof[:, c].tolist() for c in channels}}
    fig_k.suptitle(f'Learned diffusivity k ({os.path.basename(path)})')
    fig_h.suptitle(f'Heat kernel: impulse response of IDCT(exp(-k w) DCT(.)), {SIDE}x{SIDE} field')
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    fig_k.tight_layout()
    fig_k.savefig(args.out + '_diffusivity.png', dpi=110)
    fig_h.tight_layout()
    fig_h.savefig(args.out + '_kernel.png', dpi=110)
    with open(args.out + '.json', 'w') as f:
        json.dump(record, f, indent=1)
    print(f'wrote {args.out}_diffusivity.png, {args.out}_kernel.png, {args.out}.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
