"""Write a BasicSR pretrain file that starts a model from shipped weights of another colour mode or depth.

    python scripts/warm_start.py --weights weights/vheatir_M_denoise_gray.pth --in-chans 3 \\
        --out experiments/pretrain/denoise_color_from_gray.pth
    python vheatir/train.py -opt options/train/train_vHeatIR_M_denoise_color.yml --force_yml \\
        path:pretrain_network_g=experiments/pretrain/denoise_color_from_gray.pth path:param_key_g=params

    python scripts/warm_start.py --weights experiments/pretrain/vheatir_S_jpeg_gray_41500.pth --depths 4,4,4,4 \\
        --out experiments/pretrain/jpeg_gray_deeper.pth   # the same function, one more block per group

How the head and tail are adapted is described in vheatir.weights.warm_start_params, how blocks
are added in vheatir.weights.deepen_params.
"""
import argparse
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from vheatir.compat import atomic_torch_save  # noqa: E402
from vheatir.weights import deepen_params, read_weights, warm_start_params  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--weights', required=True, help='a vHeatIR or SwinIR weights file (weights/*.pth)')
    parser.add_argument('--in-chans', type=int, choices=(1, 3), help='image channels of the new model (default: as stored)')
    parser.add_argument('--depths', help='blocks per group of the new model, e.g. 4,4,4,4 (default: as stored)')
    parser.add_argument('--out', required=True, help='pretrain file to write ({"params": state_dict})')
    args = parser.parse_args()
    try:
        in_chans = args.in_chans or read_weights(args.weights)['network_g'].get('in_chans', 3)
        params = warm_start_params(args.weights, in_chans)
        if args.depths:
            if not all(d.strip().isdigit() for d in args.depths.split(',')):
                raise ValueError(f'--depths {args.depths!r}: expected comma-separated block counts, e.g. 4,4,4,4')
            params = deepen_params(args.weights, [int(d) for d in args.depths.split(',')], params)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    atomic_torch_save({'params': params}, args.out)
    print(f'wrote {args.out} ({in_chans} image channels{", depths " + args.depths if args.depths else ""}, '
          f'from {args.weights})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
