"""PSNR against seconds per image, one point per model, from benchmark JSON files.

    python scripts/plot_quality_speed.py                 # BSD68 sigma 25, every JSON in docs/results
    python scripts/plot_quality_speed.py --set CBSD68 --level 25 --out docs/quality_speed_CBSD68_s25.png
    python scripts/plot_quality_speed.py --speed docs/bench_speed.json --out docs/quality_speed_peers.png

With ``--speed``, the points are instead the ``peers`` rows of ``scripts/bench_speed.py``: BSD68
sigma 25 PSNR against seconds per megapixel on this CPU, one point per model and engine; peers
placed at their published PSNR and timed at random initialisation are drawn hollow.

Reads the files written by ``scripts/benchmark.py`` (``--results``, default docs/results/*.json),
keeps those with a result for ``--set`` at ``--level`` (named, and stale ones left out, as in the
README tables), and draws mean PSNR (dB) against mean
seconds per image on a log axis; the degraded input (``--model input``) is drawn as a horizontal
line. Seconds are whatever each benchmark run measured on its machine: compare points from runs
on the same machine only. Prints the points as a markdown table.
"""
import argparse
import glob
import json
import os
import sys
from typing import List, Optional

from results_tables import measured


MARKERS = ('o', 's', '^', 'D', 'v')


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


def speed_points(path: str) -> List[dict]:
    """One dict per ``peers`` row of a bench_speed JSON: label, model, engine, psnr, seconds (per MP),
    published (True where the PSNR is the published one and the speed that of a random-init network)."""
    with open(path) as f:
        rows = json.load(f).get('peers', [])
    return [dict(label=f"{r['model']} ({r['engine']})", model=r['model'], engine=r['engine'], psnr=r['psnr'],
                 seconds=r['s_per_mp'], published=r['psnr_source'] == 'published') for r in rows]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--set', default='BSD68')
    p.add_argument('--level', type=float, default=25, help='sigma (0-255) or JPEG quality of the results to plot')
    p.add_argument('--results', nargs='*', default=None, help='benchmark JSON files (default docs/results/*.json)')
    p.add_argument('--speed', default=None, help="bench_speed JSON: plot its 'peers' rows (PSNR against s/MP)")
    p.add_argument('--out', default=None, help='PNG path (default docs/quality_speed_<set>_<level>.png)')
    args = p.parse_args(argv)
    if args.speed:
        rows = speed_points(args.speed)
        with open(args.speed) as f:
            threads = json.load(f).get('env_by_section', {}).get('peers', {}).get('threads', '?')
        source, unit = f'{args.speed} (no peers section)', f'seconds per megapixel (this CPU, {threads} threads)'
        title = 'BSD68 sigma 25 (gray): filled = measured here; hollow = published PSNR,\n' \
            'speed of the architecture at random initialisation'
    else:
        files = args.results if args.results is not None else sorted(glob.glob('docs/results/*.json'))
        rows = points(files, args.set, args.level)
        source, unit = f'{len(files)} file(s)', 'seconds per image (this CPU)'
        title = f'{args.set}, level {args.level:g}'
    models = [r for r in rows if r['model'] != 'input']
    if not models:
        print(f'error: no benchmark result for {args.set} at level {args.level:g} in {source}', file=sys.stderr)
        return 2
    out = args.out or f'docs/quality_speed_{args.set}_{args.level:g}.png'

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    # One colour per model, one marker per engine; each model named once, at its fastest point.
    names = list(dict.fromkeys(r['model'] for r in models))
    engines = list(dict.fromkeys(r.get('engine', '') for r in models))
    for r in models:
        ax.semilogx(r['seconds'], r['psnr'], MARKERS[engines.index(r.get('engine', '')) % len(MARKERS)],
                    color=f'C{names.index(r["model"]) % 10}', mfc='none' if r.get('published') else None)
    for name in names:
        fastest = min((r for r in models if r['model'] == name), key=lambda r: r['seconds'])
        ax.annotate(fastest['model'] if args.speed else fastest['label'], (fastest['seconds'], fastest['psnr']),
                    textcoords='offset points', xytext=(6, 4), fontsize=8)
    handles = [ax.plot([], [], MARKERS[i % len(MARKERS)], color='gray', label=e)[0]
               for i, e in enumerate(engines) if e]
    for r in rows:
        if r['model'] == 'input':
            handles.append(ax.axhline(r['psnr'], color='gray', ls='--', lw=1,
                                      label=f"degraded input {r['psnr']:.2f} dB"))
    ax.set(xlabel=unit, ylabel='PSNR (dB)', title=title)
    ax.grid(True, which='both', alpha=0.3)
    if handles:
        ax.legend(handles=handles, fontsize=8, loc='best')
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"| model | PSNR (dB) | {'s/MP' if args.speed else 's/image'} |\n|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['psnr']:.2f} | {r['seconds']:.2f} |")
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
