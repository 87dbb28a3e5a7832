"""PSNR against seconds per image, one point per model, from benchmark JSON files.

    python scripts/plot_quality_speed.py                 # BSD68 sigma 25, every JSON in docs/results
    python scripts/plot_quality_speed.py --set CBSD68 --level 25 --out docs/quality_speed_CBSD68_s25.png

Reads the files written by ``scripts/benchmark.py`` (``--results``, default docs/results/*.json),
keeps those with a result for ``--set`` at ``--level`` (named, and stale ones left out, as in the
README tables), and draws mean PSNR (dB) against mean
seconds per image on a log axis; the degraded input (``--model input``) is drawn as a horizontal
line. Seconds are whatever each benchmark run measured on its machine: compare points from runs
on the same machine only. Prints the points as a markdown table.
"""
import argparse
import glob
import os
import sys
from typing import List, Optional

from results_tables import measured


def points(files: List[str], set_name: str, level: float) -> List[dict]:
    """One dict per model with a result for ``set_name`` at ``level``: label, model, psnr, seconds.

    Models are named and stale JSONs left out as in the README tables
    (:func:`results_tables.measured`); ``model`` is 'input' for the degraded input.
    """
    scores, models, _ = measured(files)
    rows = []
    for family, labels in scores.items():
        for label, cells in labels.items():
            cell = cells.get((set_name, int(round(level))))
            if cell is None:
                continue
            params = models[family][label].get('params')
            rows.append(dict(label=label + (f' ({params / 1e3:.0f}k params)' if params else ''),
                             model='input' if label == 'input' else label, psnr=cell['psnr'],
                             seconds=cell['seconds']))
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--set', default='BSD68')
    p.add_argument('--level', type=float, default=25, help='sigma (0-255) or JPEG quality of the results to plot')
    p.add_argument('--results', nargs='*', default=None, help='benchmark JSON files (default docs/results/*.json)')
    p.add_argument('--out', default=None, help='PNG path (default docs/quality_speed_<set>_<level>.png)')
    args = p.parse_args(argv)
    files = args.results if args.results is not None else sorted(glob.glob('docs/results/*.json'))
    rows = points(files, args.set, args.level)
    models = [r for r in rows if r['model'] != 'input']
    if not models:
        print(f'error: no benchmark result for {args.set} at level {args.level:g} in {len(files)} file(s)',
              file=sys.stderr)
        return 2
    out = args.out or f'docs/quality_speed_{args.set}_{args.level:g}.png'

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in models:
        ax.semilogx(r['seconds'], r['psnr'], 'o')
        ax.annotate(r['label'], (r['seconds'], r['psnr']), textcoords='offset points', xytext=(6, 4), fontsize=8)
    for r in rows:
        if r['model'] == 'input':
            ax.axhline(r['psnr'], color='gray', ls='--', lw=1, label=f"degraded input {r['psnr']:.2f} dB")
    ax.set(xlabel='seconds per image (this CPU)', ylabel='PSNR (dB)', title=f'{args.set}, level {args.level:g}')
    ax.grid(True, which='both', alpha=0.3)
    if any(r['model'] == 'input' for r in rows):
        ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    print('| model | PSNR (dB) | s/image |\n|---|---|---|')
    for r in rows:
        print(f"| {r['label']} | {r['psnr']:.2f} | {r['seconds']:.2f} |")
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
