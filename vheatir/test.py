"""Evaluate from a BasicSR test option file: ``python vheatir/test.py -opt options/test/<file>.yml``.

Run from the repository root: results (log with PSNR/SSIM, images if asked) go
to ``./results/<name>``.
"""
import os
import sys

if __package__ in (None, ''):
    # Run as a script: Python put vheatir/ itself on sys.path, which would shadow top-level
    # names (data, models, test, ...). Put the repository root there instead.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import vheatir  # noqa: E402

vheatir.use_basicsr()  # registers archs/datasets/models/metrics; safe option-file parsing
from vheatir.allocator import reuse_freed_memory  # noqa: E402
from vheatir.compat import OptionFileError, read_train_options  # noqa: E402


def main() -> int:
    from basicsr.test import test_pipeline
    try:
        read_train_options(sys.argv[1:])  # one-line error for a file that is not plain YAML data
    except OptionFileError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    reuse_freed_memory()  # whole test images; see vheatir/allocator.py
    test_pipeline(os.getcwd())
    return 0


if __name__ == '__main__':
    sys.exit(main())
