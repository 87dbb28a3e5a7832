"""Build a BasicSR LMDB from a folder of images.

    python scripts/make_lmdb.py FOLDER OUT.lmdb [--compress-level N]

See vheatir/data/lmdb_build.py. Runs from a checkout without installing the package.
"""
import os
import sys

# The repo root (parent of scripts/) must be importable so `vheatir` is found without pip install.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from vheatir.data.lmdb_build import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
