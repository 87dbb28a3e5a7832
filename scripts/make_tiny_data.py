"""Write the tiny quick-start data set from scikit-image's bundled samples (no download).

    python scripts/make_tiny_data.py [--out datasets/tiny_gray] [--color]

Makes ``<out>/train`` (96 px crops) and ``<out>/val`` (64 px crops) of 8-bit PNGs.
"""
import argparse
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from vheatir.data.samples import write_tiny_dataset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=None, help='output folder (default datasets/tiny_gray or tiny_color)')
    parser.add_argument('--color', action='store_true', help='RGB images instead of 8-bit gray')
    args = parser.parse_args()
    out = args.out or os.path.join('datasets', 'tiny_color' if args.color else 'tiny_gray')
    write_tiny_dataset(out, gray=not args.color)
    print(f'wrote tiny training and validation images under {out}/train and {out}/val')
    return 0


if __name__ == '__main__':
    sys.exit(main())
