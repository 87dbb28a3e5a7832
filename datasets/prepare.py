"""Link the shared benchmark sets into datasets/ and build the training LMDBs.

    python datasets/prepare.py [--shared PATH] [--dest PATH]

Runs from any working directory. For every set found in the shared folder
(default: ``<repo>/../shared/datasets``) it makes a symlink ``<dest>/<Set>`` to it
(default dest: ``<repo>/datasets``), then builds ``<dest>/Train400.lmdb`` and
``<dest>/CBSD432.lmdb`` from the shared Train400 / CBSD432 folders.

Idempotent: correct links and existing LMDBs are kept, so a second run does nothing.
Existing files, folders or other links with a set's name are never touched (reported).
Exit status: 0 done, 1 some LMDB build failed, 2 shared folder missing / bad arguments.
"""
import argparse
import os
import sys
import time
from os import path as osp
from typing import Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))  # the repo checkout
SETS = ('Set12', 'BSD68', 'CBSD68', 'LIVE1', 'Classic5', 'Train400', 'CBSD432', 'T91', 'DIV2K_crops_gray', 'CC15')
LMDB_SETS = ('Train400', 'CBSD432')  # training sets: random-crop reads are faster from LMDB


def _link(src: str, link: str) -> str:
    """Make ``link`` -> ``src`` unless something is already there; return a one-line status."""
    name = osp.basename(link)
    if osp.islink(link):
        if osp.realpath(link) == osp.realpath(src):
            return 'ok'
        return (f'warning: {link} is a link to {os.readlink(link)}, not {src}; left untouched '
                '(remove it and rerun to relink)')
    if osp.lexists(link):
        return f'warning: {link} exists and is not a link; left untouched (option files will read it)'
    # Relative target (computed on real paths, as the kernel resolves it from the link's real
    # folder) so the links survive moving the checkout together with ../shared.
    target = osp.relpath(osp.realpath(src), osp.realpath(osp.dirname(link)))
    os.symlink(target, link, target_is_directory=True)
    return f'linked {name} -> {target}'


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Link the sets and build the LMDBs; see the module docstring. Returns the exit status."""
    parser = argparse.ArgumentParser(description='Link shared benchmark sets into datasets/ and build '
                                     'Train400.lmdb and CBSD432.lmdb.')
    parser.add_argument('--shared', default=osp.join(osp.dirname(ROOT), 'shared', 'datasets'),
                        help='folder holding Set12/, BSD68/, ... (default: <repo>/../shared/datasets)')
    parser.add_argument('--dest', default=osp.join(ROOT, 'datasets'),
                        help='where links and LMDBs go (default: <repo>/datasets)')
    args = parser.parse_args(argv)
    shared, dest = osp.abspath(args.shared), osp.abspath(args.dest)

    if not osp.isdir(shared):
        print(f'error: shared datasets folder not found: {shared} (pass --shared PATH)', file=sys.stderr)
        return 2
    os.makedirs(dest, exist_ok=True)

    changed = False
    failed = False
    for name in SETS:
        src = osp.join(shared, name)
        if not osp.isdir(src):
            print(f'{name}: not in {shared}, skipped')
            continue
        status = _link(src, osp.join(dest, name))
        changed |= status.startswith('linked')
        print(f'{name}: {status}')

    for name in LMDB_SETS:
        src, out = osp.join(shared, name), osp.join(dest, f'{name}.lmdb')
        if osp.lexists(out):
            # build_lmdb renames a finished build into place, so an existing one is complete
            # unless someone else made it; meta_info.txt is the cheap sign of a BasicSR LMDB.
            note = '' if osp.isfile(osp.join(out, 'meta_info.txt')) else ' (warning: no meta_info.txt in it)'
            print(f'{name}.lmdb: exists, kept{note}')
            continue
        if not osp.isdir(src):
            print(f'{name}.lmdb: {name} not in {shared}, skipped')
            continue
        # Imported only when needed: it pulls in torch and basicsr (seconds), which a no-op run
        # or a missing shared folder should not wait for.
        if ROOT not in sys.path:
            sys.path.insert(0, ROOT)
        from vheatir.data.lmdb_build import build_lmdb, dir_size

        start = time.perf_counter()
        try:
            n = build_lmdb(src, out)
        except (ValueError, OSError) as err:
            print(f'error: {name}.lmdb: {err}', file=sys.stderr)
            failed = True
            continue
        changed = True
        print(f'{name}.lmdb: built, {n} images, {dir_size(out) / 1024 ** 2:.1f} MB, '
              f'{time.perf_counter() - start:.1f} s')

    if not changed and not failed:
        print(f'nothing to do: {dest} is already prepared')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
