"""The result tables of README.md, docs/benchmarks.md, docs/real_noise.md, docs/status.md and
docs/usage.md, built from the benchmark JSONs and the published numbers.

    python scripts/results_tables.py                                          # print every table
    python scripts/results_tables.py --readme README.md --docs docs/benchmarks.md \\
        --real-noise docs/real_noise.md --status docs/status.md --usage docs/usage.md   # rewrite all five

Full tables (docs/benchmarks.md), one per task family (gray/colour denoising, gray/colour JPEG):
a row per test set and level, a column per model measured by ``scripts/benchmark.py``
(``docs/results/*.json``) and per published method (``docs/published.json``, PSNR only).
Measured cells are "PSNR / SSIM", with "/ PSNR-B" for JPEG. A JSON whose weights file no longer
has the sha256 it was measured with is stale and left out (named on stderr), so a table never
mixes old scores with new weights. A fifth table, ``headtohead``, puts every model measured on
BSD68 at σ25 side by side with its parameters, FLOPs at 256², training iterations and seconds,
and seconds per image. A sixth, ``pairs``, sums up each same-budget vHeatIR-S/SwinIR-S pair
(``PAIRS``) over every cell both were measured at: the mean, smallest and largest PSNR margin,
and how many cells each wins.

Compact tables (README.md), one per task family, block ``<family>_compact``: PSNR only, a row per
method (the shipped model, the task's equal-iteration vHeatIR-S/SwinIR-S pair, our BM3D run,
the published methods), a column per set and level. The shipped model of each task is the one
``--manifest`` (default weights/manifest.json) serves; its column is named by its size
(vHeatIR-S, vHeatIR-M, from its option file's name).

``floors`` (docs/status.md): issue 21's floors (``FLOORS``) against the shipped every-level models,
unrounded, with the margin and whether each holds.

``jpeg_high_quality`` (docs/usage.md): the JPEG input and the shipped JPEG models at the
qualities above the training range, from ``--high-quality`` (default docs/results/jpeg_high_quality/,
measured with ``scripts/benchmark.py --qualities 95,...`` and ``--model input``), with the gain.

``guardrail`` (docs/real_noise.md): the shipped gray denoiser on BSD68 at the true σ and at the σ
``--sigma auto`` estimates, so the noise estimate is seen to cost nothing on Gaussian noise.

``--readme``, ``--docs``, ``--real-noise``, ``--status`` and ``--usage`` replace the text between
``<!-- results:<block> -->`` and ``<!-- /results:<block> -->`` in each file: the compact blocks in
the README, the full ones in the docs page, the guardrail in the real-noise page, the floors in the
status page, the high-quality JPEG table in the usage page. A file that lacks one of its blocks is
an error and then no file is written; otherwise all are written atomically.
"""
import argparse
import glob
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import vheatir  # noqa: E402,F401  (torchvision alias before basicsr)
from vheatir.docblocks import rewrite_files  # noqa: E402
from vheatir.weights import MANIFEST, SMALL, default_entry, sha256_of, size_label  # noqa: E402

# family -> (sets, levels): the levels each table shows, the benchmark grid.
FAMILIES = {
    'denoise_gray': (['BSD68', 'Set12'], [15, 25, 50]),
    'denoise_color': (['CBSD68'], [15, 25, 50]),
    'jpeg_gray': (['LIVE1', 'Classic5'], [10, 20, 30, 40]),
    'jpeg_color': (['LIVE1'], [10, 20, 30, 40]),
}
# (vHeatIR-S label, SwinIR-S label, budget): the same-budget pairs of the README, each trained
# through the same pipeline on the same data and schedule. "5k+1k it": the pair's own 5k gray
# denoiser plus 1,000 iterations on the table's task (colour: warm-started, scripts/warm_start.py);
# "5k+1k+1k it": the pair's own (5k+1k it) gray JPEG model plus 1,000 colour JPEG iterations.
PAIRS = [
    ('vHeatIR-S (5k it)', 'SwinIR-S (5k it)', 'equal iterations'),
    ('vHeatIR-S (5k it)', 'SwinIR-S (equal time)', 'equal CPU time'),
    ('vHeatIR-S (5k+1k it)', 'SwinIR-S (5k+1k it)', 'equal iterations'),
    ('vHeatIR-S (5k+1k it)', 'SwinIR-S (equal time)', 'equal CPU time'),
    ('vHeatIR-S (5k+1k+1k it)', 'SwinIR-S (5k+1k+1k it)', 'equal iterations'),
    ('vHeatIR-S (5k+1k+1k it)', 'SwinIR-S (equal time)', 'equal CPU time'),
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = '—'
COMPACT = '_compact'      # suffix of the README's compact block of a family


def shipped_label(family: str, manifest: str = MANIFEST) -> str:
    """Label of the shipped every-level vHeatIR model of ``family`` (e.g. 'jpeg_gray') as
    :func:`model_label` names its benchmark column: its manifest entry's label, else its size from
    its option file; 'vHeatIR-S' when the manifest lists none."""
    task, color = family.split('_')
    try:
        entry = default_entry(task, color, manifest)
    except FileNotFoundError:
        return SMALL
    return entry.get('label') or size_label(entry.get('option'))


def model_label(data: dict) -> str:
    """Column name of one benchmark JSON: the weights' own label, else the model kind; a training
    checkpoint's adds its run and file name.

    A run on 8-bit denoising inputs (``scripts/benchmark.py --eight-bit``) gets its own column,
    never mixed with SwinIR's float inputs; so do runs at an estimated sigma (``--sigma-auto``)
    and in bf16 (``--amp bf16``), never mixed with the true-sigma float32 protocol."""
    eight_bit = data.get('input') == '8-bit'
    suffix = (' (8-bit input)' if eight_bit else '') + (' (σ estimated)' if data.get('sigma') == 'auto' else '') + \
        (f" ({data['amp']})" if data.get('amp') else '')
    if data.get('model') == 'input':
        return 'input (8-bit)' if eight_bit else 'input'
    if data.get('model') == 'bm3d':
        return ('CBM3D (ours)' if data.get('color') else 'BM3D (ours)') + suffix
    meta = data.get('weights_meta') or {}
    arch = data.get('arch')
    label = meta.get('label') or (size_label(meta.get('option') or data.get('option')) if arch == 'VHeatIR' else
                                  {'SwinIR': 'SwinIR-S'}.get(arch, arch or '?'))
    if data.get('checkpoint') and not data.get('weights'):   # a training checkpoint, never the shipped model
        run = os.path.basename(os.path.dirname(os.path.dirname(data['checkpoint'])))
        label += f" ({run} {os.path.splitext(os.path.basename(data['checkpoint']))[0]})"
    level = data.get('weights_level')
    if level is not None:
        label += f" ({'σ' if data['task'] == 'denoise' else 'q'}{level:g} only)"
    if data.get('self_ensemble'):
        label += ' ×8 self-ensemble'
    return label + suffix


def training_cost(meta: dict) -> Tuple[Optional[int], Optional[float]]:
    """(iterations, wall seconds) of a weights file's whole training chain, from its meta."""
    return (meta.get('total_iterations', meta.get('iterations')),
            meta.get('total_wall_time_s', meta.get('wall_time_s')))


def measured(files: List[str], root: str = ROOT) -> Tuple[dict, dict, List[str]]:
    """Mean scores and model facts per family and label from benchmark JSONs; and the stale files.

    Returns ({family: {label: {(set, level): mean dict with 'seconds'}}},
    {family: {label: {'params', 'gflops_256', 'iterations', 'train_s'}}}, [stale file]);
    facts a JSON does not hold are None. A later file wins over an earlier one for the same cell.
    """
    table: Dict[str, Dict[str, Dict[tuple, dict]]] = {}
    models: Dict[str, Dict[str, dict]] = {}
    stale = []
    for path in files:
        with open(path) as f:
            data = json.load(f)
        if 'results' not in data or 'task' not in data:
            continue
        weights = data.get('weights')
        if weights and data.get('weights_sha256'):
            wpath = weights if os.path.isabs(weights) else os.path.join(root, weights)
            if not os.path.isfile(wpath) or sha256_of(wpath) != data['weights_sha256']:
                stale.append(path)
                continue
        family = f"{data['task']}_{'color' if data.get('color') else 'gray'}"
        label = model_label(data)
        cells = table.setdefault(family, {}).setdefault(label, {})
        for r in data['results']:
            cells[(r['set'], int(round(float(r['level']))))] = dict(r['mean'], seconds=r.get('seconds_per_image'))
        iterations, train_s = training_cost(data.get('weights_meta') or {})
        facts = models.setdefault(family, {}).setdefault(label, {})
        new = {'params': data.get('parameters'), 'gflops_256': data.get('gflops_256'),
               'iterations': iterations, 'train_s': train_s}
        facts.update({k: v for k, v in new.items() if v is not None or k not in facts})
    return table, models, stale


def _cell(mean: Optional[dict], jpeg: bool) -> str:
    if mean is None:
        return MISSING
    text = f"{mean['psnr']:.2f} / {mean['ssim']:.4f}"
    return text + (f" / {mean['psnrb']:.2f}" if jpeg and 'psnrb' in mean else '')


def markdown_table(family: str, scores: Dict[str, Dict[tuple, dict]], published: Dict[str, dict]) -> str:
    """Markdown table for ``family``: measured columns (input first), then published PSNRs."""
    sets, levels = FAMILIES[family]
    jpeg = family.startswith('jpeg')
    level_name = 'q' if jpeg else 'σ'
    labels = sorted(scores, key=lambda s: (s != 'input', 'ours' not in s, s))
    pub = published.get(family, {})
    head = [f"set, {level_name}"] + labels + [f'{name} (published)' for name in pub]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for set_name in sets:
        for level in levels:
            row = [f'{set_name}, {level}']
            row += [_cell(scores[label].get((set_name, level)), jpeg) for label in labels]
            row += [f"{pub[name][set_name][str(level)]:.2f}" if str(level) in pub[name].get(set_name, {})
                    else MISSING for name in pub]
            lines.append('| ' + ' | '.join(row) + ' |')
    metric = 'PSNR dB / SSIM / PSNR-B' if jpeg else 'PSNR dB / SSIM'
    return '\n'.join(lines) + f'\n\n(measured: {metric}; published: PSNR dB; {MISSING}: not measured yet)'


def compact_table(family: str, scores: Dict[str, Dict[tuple, dict]], published: Dict[str, dict],
                  shipped: str, pairs: List[Tuple[str, str, str]] = PAIRS) -> str:
    """README table for ``family``, PSNR only: a row per method, a column per set and level.

    Rows: the shipped model (column ``shipped``), on 8-bit inputs too where measured (denoising: what users' files
    hold), the family's first equal-iteration pair of ``pairs`` that both were measured on, our
    BM3D/CBM3D run, then the published methods; a measured model with no cell in the grid is left
    out."""
    sets, levels = FAMILIES[family]
    level_name = 'q' if family.startswith('jpeg') else 'σ'
    grid = [(s, lv) for s in sets for lv in levels]

    def has_cells(label: str) -> bool:
        return any(c in scores.get(label, {}) for c in grid)

    rows: List[Tuple[str, List[str]]] = []
    wanted = [(shipped, f'{shipped} (shipped)'),
              (f'{shipped} (8-bit input)', f'{shipped} (shipped), 8-bit input')]
    pair = next(((a, b) for a, b, budget in pairs
                 if budget == 'equal iterations' and has_cells(a) and has_cells(b)), None)
    if pair:
        wanted += [(label, label) for label in pair]
    wanted += [(label, label) for label in ('BM3D (ours)', 'CBM3D (ours)')]
    for label, shown in wanted:
        if has_cells(label):
            cells = scores[label]
            rows.append((shown, [f"{cells[c]['psnr']:.2f}" if c in cells else MISSING for c in grid]))
    for name, values in published.get(family, {}).items():
        rows.append((f'{name} (published)', [f"{values[s][str(lv)]:.2f}" if str(lv) in values.get(s, {})
                                             else MISSING for s, lv in grid]))
    head = ['PSNR dB'] + [f'{s} {level_name}{lv}' for s, lv in grid]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    lines += ['| ' + ' | '.join([shown] + cells) + ' |' for shown, cells in rows]
    return '\n'.join(lines)


def head_to_head(scores: Dict[str, Dict[tuple, dict]], models: Dict[str, dict],
                 set_name: str = 'BSD68', level: int = 25) -> str:
    """Markdown table of every model measured on ``set_name`` at σ ``level`` (gray denoising):
    parameters, GFLOPs of one 256 x 256 image, training iterations and wall seconds, PSNR /
    SSIM and seconds per image; best PSNR first."""
    def num(value, fmt: str) -> str:
        return MISSING if value is None else format(value, fmt)

    rows = []
    for label, cells in scores.items():
        cell = cells.get((set_name, level))
        if cell is None or label == 'input':
            continue
        facts = models.get(label, {})
        rows.append((cell['psnr'], [label, num(facts.get('params'), ','), num(facts.get('gflops_256'), '.1f'),
                                    num(facts.get('iterations'), ','), num(facts.get('train_s'), ',.0f'),
                                    _cell(cell, False), num(cell.get('seconds'), '.2f')]))
    head = ['model', 'parameters', 'GFLOPs (256²)', 'training iterations', 'training s',
            f'{set_name} σ{level} PSNR / SSIM', 's / image']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    lines += ['| ' + ' | '.join(row) + ' |' for _, row in sorted(rows, key=lambda r: -r[0])]
    return '\n'.join(lines)


def pair_summary(scores: Dict[str, Dict[str, Dict[tuple, dict]]],
                 pairs: List[Tuple[str, str, str]] = PAIRS) -> str:
    """Markdown table, a row per family and same-budget pair measured at one or more common
    cells of the family's grid: cells, mean PSNR of each model over them, the margin
    (vHeatIR-S minus SwinIR-S, dB) as mean and min … max, and the cells vHeatIR-S wins."""
    head = ['task', 'budget', 'vHeatIR-S model', 'SwinIR-S model', 'cells', 'mean PSNR vHeatIR-S / SwinIR-S',
            'margin dB: mean (min … max)', 'vHeatIR-S wins']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for family, (sets, levels) in FAMILIES.items():
        table = scores.get(family, {})
        for ours, theirs, budget in pairs:
            a, b = table.get(ours, {}), table.get(theirs, {})
            cells = [(s, lv) for s in sets for lv in levels if (s, lv) in a and (s, lv) in b]
            if not cells:
                continue
            margins = [a[c]['psnr'] - b[c]['psnr'] for c in cells]
            n = len(cells)
            lines.append('| ' + ' | '.join([
                family.replace('_', ' '), budget, ours, theirs, str(n),
                f"{sum(a[c]['psnr'] for c in cells) / n:.2f} / {sum(b[c]['psnr'] for c in cells) / n:.2f}",
                f'{sum(margins) / n:+.2f} ({min(margins):+.2f} … {max(margins):+.2f})',
                f'{sum(m > 0 for m in margins)} of {n}']) + ' |')
    return '\n'.join(lines)


def full_blocks(scores: dict, models: dict, published: Dict[str, dict]) -> Dict[str, str]:
    """The docs page's blocks: the four task tables, ``headtohead`` and ``pairs``."""
    blocks = {family: markdown_table(family, scores.get(family, {}), published) for family in FAMILIES}
    blocks['headtohead'] = head_to_head(scores.get('denoise_gray', {}), models.get('denoise_gray', {}))
    blocks['pairs'] = pair_summary(scores)
    return blocks


def compact_blocks(scores: dict, published: Dict[str, dict], shipped: Dict[str, str]) -> Dict[str, str]:
    """The README's blocks: ``<family>_compact`` for each task family, ``shipped[family]`` its shipped model."""
    return {family + COMPACT: compact_table(family, scores.get(family, {}), published, shipped[family])
            for family in FAMILIES}


GUARDRAIL_SET, GUARDRAIL_SIGMAS = 'BSD68', (15, 25, 50)


def guardrail_table(gray: Dict[str, Dict[tuple, dict]], shipped: str) -> str:
    """docs/real_noise.md's ``guardrail`` block: the shipped gray denoiser's BSD68 PSNR at the true
    σ and at the σ ``--sigma auto`` estimates (``scripts/benchmark.py --sigma-auto``), the latter
    with its difference, on SwinIR's float inputs and on 8-bit inputs (``--eight-bit``, rows shown
    where measured); a missing cell shows as a dash. ``shipped``: the shipped model's column."""
    lines = [f'| {GUARDRAIL_SET} | ' + ' | '.join(f'σ{s}' for s in GUARDRAIL_SIGMAS) + ' |',
             '|---' * (len(GUARDRAIL_SIGMAS) + 1) + '|']
    for suffix, name in (('', ''), (' (8-bit input)', '8-bit input, ')):
        true, auto = gray.get(shipped + suffix, {}), gray.get(f'{shipped}{suffix} (σ estimated)', {})
        if suffix and not (true or auto):
            continue
        row_true, row_auto = [f'{name}true σ'], [f'{name}`--sigma auto`']
        for s in GUARDRAIL_SIGMAS:
            t, a = true.get((GUARDRAIL_SET, s)), auto.get((GUARDRAIL_SET, s))
            row_true.append(f"{t['psnr']:.2f}" if t else MISSING)
            # the difference of the rounded cells, so that the row reads consistently
            row_auto.append(MISSING if a is None else f"{a['psnr']:.2f}" if t is None else
                            f"{a['psnr']:.2f} ({round(a['psnr'], 2) - round(t['psnr'], 2):+.2f})".replace('-', '−'))
        lines += ['| ' + ' | '.join(row) + ' |' for row in (row_true, row_auto)]
    return '\n'.join(lines)


# Issue 21's floors for the shipped every-level models: (family, set, level, floor in dB, what is
# compared). 'float' is the SwinIR-protocol PSNR; '8-bit gap' is the PSNR on 8-bit inputs minus it.
FLOORS = [
    ('denoise_gray', 'BSD68', 15, 31.40, 'float'),
    ('denoise_gray', 'BSD68', 25, 29.05, 'float'),
    ('denoise_gray', 'BSD68', 50, 26.05, 'float'),
    ('denoise_gray', 'Set12', 15, 32.50, 'float'),
    ('denoise_gray', 'Set12', 25, 30.10, 'float'),
    ('denoise_gray', 'Set12', 50, 26.85, 'float'),
    ('denoise_gray', 'Set12', 50, -0.25, '8-bit gap'),
    ('denoise_color', 'CBSD68', 25, 31.15, 'float'),
    ('jpeg_gray', 'LIVE1', 10, 29.25, 'float'),
    ('jpeg_gray', 'Classic5', 10, 29.35, 'float'),
    ('jpeg_gray', 'Classic5', 60, 35.00, 'float'),
    ('jpeg_gray', 'Classic5', 80, 37.20, 'float'),
    ('jpeg_color', 'LIVE1', 10, 27.20, 'float'),
]


FAMILY_MODELS = {'denoise_gray': 'gray denoiser', 'denoise_color': 'colour denoiser',
                 'jpeg_gray': 'gray JPEG', 'jpeg_color': 'colour JPEG'}


def floors_table(scores: Dict[str, Dict[str, Dict[tuple, dict]]], shipped: Dict[str, str]) -> str:
    """docs/status.md's ``floors`` block: each of :data:`FLOORS` with the shipped model's PSNR (its
    mean over the set, as measured) to three decimals and its margin. A floor holds when the PSNR
    at the manifest's two decimals reaches it, as the issue's table reads; when only the rounded
    value does, the row says so. A missing cell shows as a dash."""
    lines = ['| model | floor | shipped | margin | holds |', '|---|---|---|---|---|']
    for family, name, level, floor, kind in FLOORS:
        cells = scores.get(family, {})
        value = cells.get(shipped[family], {}).get((name, level))
        label = f"{name} {'σ' if family.startswith('denoise') else 'q'}{level}"
        if kind == '8-bit gap':
            eight = cells.get(f'{shipped[family]} (8-bit input)', {}).get((name, level))
            value = None if value is None or eight is None else {'psnr': eight['psnr'] - value['psnr']}
            label += ', 8-bit minus float input'
        row = [FAMILY_MODELS[family], f'{label} ≥ {_signed(floor, 2)}']
        if value is None:
            lines.append('| ' + ' | '.join(row + [MISSING, MISSING, '']) + ' |')
            continue
        psnr = value['psnr']
        holds = '✗' if round(psnr, 2) < floor else '✓' if psnr >= floor else '✓ at two decimals'
        lines.append('| ' + ' | '.join(row + [_signed(psnr, 3), _signed(psnr - floor, 3, plus=True), holds]) + ' |')
    return '\n'.join(lines)


# (family, set, row label) of the high-quality JPEG table: each set is shown for one family's model.
HIGH_QUALITY_ROWS = [('jpeg_gray', 'Classic5', 'Classic5'), ('jpeg_color', 'LIVE1', 'LIVE1 colour')]


def high_quality_table(scores: Dict[str, Dict[str, Dict[tuple, dict]]], shipped: Dict[str, str]) -> str:
    """docs/usage.md's ``jpeg_high_quality`` block: for each of :data:`HIGH_QUALITY_ROWS`, the JPEG
    input's PSNR, the shipped model's and the model's gain (the difference of the rounded cells), at
    every quality either was measured at; unmeasured cells are empty."""
    levels = sorted({level for family, name, _ in HIGH_QUALITY_ROWS for label in (shipped[family], 'input')
                     for (s, level) in scores.get(family, {}).get(label, {}) if s == name})
    lines = ['| PSNR dB | ' + ' | '.join(f'q{q}' for q in levels) + ' |', '|---' * (len(levels) + 1) + '|']
    for family, name, title in HIGH_QUALITY_ROWS:
        cells = scores.get(family, {})
        given, model = cells.get('input', {}), cells.get(shipped[family], {})
        pairs = [(given.get((name, q)), model.get((name, q))) for q in levels]
        kind = FAMILY_MODELS[family].split()[0]
        lines.append(f'| {title}, JPEG input | ' + ' | '.join(f"{i['psnr']:.2f}" if i else '' for i, _ in pairs) + ' |')
        lines.append(f'| {title}, {kind} model | ' + ' | '.join(f"{m['psnr']:.2f}" if m else '' for _, m in pairs) + ' |')
        lines.append('| gain | ' + ' | '.join(_signed(round(m['psnr'], 2) - round(i['psnr'], 2), 2, plus=True)
                                               if i and m else '' for i, m in pairs) + ' |')
    return '\n'.join(lines)


def _signed(x: float, decimals: int, plus: bool = False) -> str:
    """``x`` with ``decimals`` decimals and a typographic minus (and a plus sign when ``plus``)."""
    return f"{x:{'+' if plus else ''}.{decimals}f}".replace('-', '−')


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--results', nargs='*', default=None, help='benchmark JSONs (default docs/results/*.json)')
    p.add_argument('--published', default=os.path.join(ROOT, 'docs', 'published.json'))
    p.add_argument('--readme', default=None, help='file whose compact <family>_compact blocks are rewritten')
    p.add_argument('--docs', default=None, help='file whose full tables (families, headtohead, pairs) are rewritten')
    p.add_argument('--real-noise', default=None,
                   help='file whose guardrail block (BSD68 at the true and the estimated sigma) is rewritten')
    p.add_argument('--status', default=None, help="file whose floors block (issue 21's floors) is rewritten")
    p.add_argument('--usage', default=None, help='file whose jpeg_high_quality block is rewritten')
    p.add_argument('--manifest', default=MANIFEST, help='weights manifest naming the shipped model of each task')
    p.add_argument('--high-quality', default=os.path.join(ROOT, 'docs', 'results', 'jpeg_high_quality'),
                   help='folder of the high-quality JPEG benchmark JSONs')
    args = p.parse_args(argv)
    files = args.results if args.results is not None else sorted(glob.glob(os.path.join(ROOT, 'docs', 'results', '*.json')))
    with open(args.published) as f:
        published = json.load(f)
    scores, models, stale = measured(files)
    shipped = {family: shipped_label(family, args.manifest) for family in FAMILIES}
    high_quality, _, stale_high = measured(sorted(glob.glob(os.path.join(args.high_quality, '*.json'))))
    stale += stale_high
    for path in stale:
        print(f'skipped {path}: its weights file has changed since it was measured', file=sys.stderr)
    targets = [(args.docs, full_blocks(scores, models, published)),
               (args.readme, compact_blocks(scores, published, shipped)),
               (args.real_noise, {'guardrail': guardrail_table(scores.get('denoise_gray', {}), shipped['denoise_gray'])}),
               (args.status, {'floors': floors_table(scores, shipped)}),
               (args.usage, {'jpeg_high_quality': high_quality_table(high_quality, shipped)})]
    for _, blocks in targets:
        for name, body in blocks.items():
            print(f'## {name}\n\n{body}\n')
    try:
        messages = rewrite_files([(path, blocks) for path, blocks in targets if path], 'results')
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print('\n'.join(messages))
    return 0


if __name__ == '__main__':
    sys.exit(main())
