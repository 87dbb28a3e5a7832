"""Train from a BasicSR option file: ``python vheatir/train.py -opt options/train/<file>.yml``.

Run from the repository root: experiments are written to ``./experiments/<name>``
and relative dataroots in option files resolve against the working directory.
"""
import os
import sys

if __package__ in (None, ''):
    # Run as a script: Python put vheatir/ itself on sys.path, which would shadow top-level
    # names (data, models, test, ...). Put the repository root there instead.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import vheatir  # noqa: E402,F401  (registers archs/datasets/models/metrics; fixes basicsr imports)
from vheatir.compat import patch_basicsr_train  # noqa: E402


def main() -> None:
    patch_basicsr_train()
    from basicsr.train import train_pipeline
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
