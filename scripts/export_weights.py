"""Export a BasicSR checkpoint as shipped vHeatIR weights and list it in weights/manifest.json.

    python scripts/export_weights.py \\
        --checkpoint experiments/train_vHeatIR_M_denoise_gray/models/net_g_20000.pth \\
        --option options/train/train_vHeatIR_M_denoise_gray.yml --task denoise --color gray \\
        --wall-time 36000 --data Train400 \\
        --out weights/vheatir_M_denoise_gray.pth

The file format and the manifest are defined in vheatir/weights.py.
"""
import argparse
import json
import os
import re
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import vheatir  # noqa: E402,F401  (torchvision alias before basicsr)
from vheatir.weights import COLORS, TASKS, export_weights, read_weights, sha256_of, update_manifest  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True, help='BasicSR net_g_*.pth (params_ema preferred)')
    parser.add_argument('--option', required=True, help='the training option file (network_g is read from it)')
    parser.add_argument('--task', required=True, choices=TASKS)
    parser.add_argument('--color', required=True, choices=COLORS)
    parser.add_argument('--out', required=True, help='weights file to write, normally weights/<name>.pth')
    parser.add_argument('--iterations', type=int, default=None,
                        help='training iterations (default: N from a net_g_N.pth name, else unrecorded)')
    parser.add_argument('--wall-time', type=float, default=None, help='training wall time in seconds')
    parser.add_argument('--data', default=None, help='training data, e.g. Train400')
    parser.add_argument('--command', default=None, help='the training command, recorded as given')
    parser.add_argument('--continued-from', default=None,
                        help='the weights file this run started from (its provenance and iterations are carried over)')
    parser.add_argument('--level', type=float, default=None,
                        help='for a specialist trained at one level only: that sigma (0-255) or JPEG quality')
    parser.add_argument('--label', default=None,
                        help='name of a comparison model (e.g. "SwinIR-S (equal time)"): shown in result tables; '
                             'a labelled entry is a task\'s default weights only when no unlabelled one is listed')
    parser.add_argument('--key', choices=('params', 'params_ema'), default=None,
                        help='checkpoint weights to export (default: params_ema where present); params = the raw '
                             'weights, for runs not much longer than the EMA\'s memory (1 / (1 - ema_decay) iterations)')
    parser.add_argument('--noise', choices=('white', 'camera'), default='white',
                        help='camera: a denoiser of camera noise, which sigma=auto picks for such noise')
    parser.add_argument('--no-manifest', action='store_true', help='write the file only, leave the manifest alone')
    args = parser.parse_args()

    for path in (args.checkpoint, args.option):
        if not os.path.isfile(path):
            print(f'error: file not found: {path}', file=sys.stderr)
            return 1
    iterations = args.iterations
    if iterations is None:
        match = re.fullmatch(r'net_g_(\d+)\.pth', os.path.basename(args.checkpoint))
        iterations = int(match.group(1)) if match else None
        if iterations is None:
            print('note: training iterations not recorded; pass --iterations N', file=sys.stderr)
    meta = {'option': args.option, 'checkpoint': args.checkpoint, 'iterations': iterations,
            'wall_time_s': args.wall_time, 'train_data': args.data, 'command': args.command, 'label': args.label}
    meta = {k: v for k, v in meta.items() if v is not None}
    if args.continued_from:
        try:
            previous = read_weights(args.continued_from)['meta']
        except (OSError, ValueError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 1
        # A fine-tune's cost is the whole chain: totals make runs comparable.
        meta['continued_from'] = {'file': args.continued_from, 'sha256': sha256_of(args.continued_from), **previous}
        for key in ('iterations', 'wall_time_s'):
            chain = [m.get(key) for m in (meta, previous)]
            if None not in chain:
                meta[f'total_{key}'] = chain[0] + previous.get(f'total_{key}', chain[1])
    try:
        level = None if args.level is None else (int(args.level) if args.level.is_integer() else args.level)
        entry = export_weights(args.checkpoint, args.option, args.out, args.task, args.color, meta, level, args.key,
                               args.noise)
    except (OSError, ValueError, RuntimeError) as err:
        print(f'error: {str(err).splitlines()[0]}', file=sys.stderr)
        return 1
    entry['training'] = {k: meta[k] for k in ('command', 'train_data', 'iterations', 'total_iterations',
                                              'wall_time_s', 'total_wall_time_s') if k in meta}
    if args.label:
        entry['label'] = args.label
    if 'continued_from' in meta:
        entry['training']['continued_from'] = {k: meta['continued_from'].get(k) for k in ('file', 'sha256')}
    if not args.no_manifest:
        update_manifest(entry)
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
