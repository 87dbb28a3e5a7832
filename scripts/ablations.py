"""Fixed-budget ablations of the gray denoising recipe: train, evaluate and tabulate the variants.

    python scripts/ablations.py run base klog frozen ...   # train each variant on one thread, then evaluate it
    python scripts/ablations.py table                      # docs/ablations.json + the table in docs/ablations.md

A variant NAME is the option file ``options/ablation/ablate_vHeatIR_S_denoise_gray_NAME.yml``. ``run``
trains it (``vheatir/train.py --auto_resume``, so a killed run continues) unless its last checkpoint
exists, copies its training log to ``docs/logs/ablation/NAME.log``, measures how far k moved
(``docs/results/ablation/NAME_k.json``) and runs ``scripts/benchmark.py`` on the raw weights: BSD68
sigma 25 and Set12 sigma 15/25/50 (SwinIR's float input) and Set12 sigma 50 with 8-bit inputs
(``docs/results/ablation/NAME_*.json``); finished steps are skipped. ``table`` reads only those
committed files, so it regenerates without the checkpoints.
"""
import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = ROOT

OPTIONS = os.path.join('options', 'ablation', 'ablate_vHeatIR_S_denoise_gray_{}.yml')
RESULTS = os.path.join('docs', 'results', 'ablation')
LOGS = os.path.join('docs', 'logs', 'ablation')
DOC = os.path.join('docs', 'ablations.md')
TABLE_JSON = os.path.join('docs', 'ablations.json')
BEGIN, END = '<!-- ablation table: begin (scripts/ablations.py table) -->', '<!-- ablation table: end -->'

# (file suffix, benchmark.py arguments, columns it fills: (set, sigma) -> column name)
EVALUATIONS = [
    ('BSD68_s25', ['--sets', 'BSD68', '--sigmas', '25'], {('BSD68', 25): 'BSD68 σ25'}),
    ('Set12_s15-50', ['--sets', 'Set12', '--sigmas', '15,25,50'],
     {('Set12', 15): 'Set12 σ15', ('Set12', 25): 'Set12 σ25', ('Set12', 50): 'Set12 σ50'}),
    ('Set12_s50_8bit', ['--sets', 'Set12', '--sigmas', '50', '--eight-bit'], {('Set12', 50): 'Set12 σ50 8-bit'}),
]
COLUMNS = [c for _, _, cols in EVALUATIONS for c in cols.values()]
TIMESTAMP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ INFO: ')
PRINT_POINT = re.compile(r'\[epoch:\s*\d+, iter:\s*([\d,]+),')


def load_yaml(path: str) -> dict:
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def option_file(name: str) -> str:
    return OPTIONS.format(name)


def training_time(log_path: str) -> Dict[str, float]:
    """{'seconds', 'iterations'} of one (possibly resumed, concatenated) BasicSR training log.

    Seconds are summed from 'Start training' to each run's last print point, so time spent
    before a restart's first step (start-up, data caching) and after the last print is not counted.
    """
    seconds, iters, start, last = 0.0, 0, None, None
    with open(log_path) as f:
        for line in f:
            m = TIMESTAMP.match(line)
            if not m:
                continue
            when = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S')
            if 'Start training from' in line:
                if start is not None and last is not None:
                    seconds += (last[0] - start).total_seconds()
                start, last = when, None
                continue
            p = PRINT_POINT.search(line)
            if p and start is not None:
                last = (when, int(p.group(1).replace(',', '')))
                iters = max(iters, last[1])
    if start is not None and last is not None:
        seconds += (last[0] - start).total_seconds()
    return {'seconds': seconds, 'iterations': iters}


def run_variant(name: str, threads: int) -> None:
    """Train (unless finished), copy the log, measure k and benchmark one variant."""
    opt_path = option_file(name)
    opt = load_yaml(opt_path)
    total = int(opt['train']['total_iter'])
    exp = os.path.join('experiments', opt['name'])
    final = os.path.join(exp, 'models', f'net_g_{total}.pth')
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads)}
    if not os.path.exists(final):
        subprocess.run([sys.executable, 'vheatir/train.py', '-opt', opt_path, '--auto_resume'], env=env, check=True)
    os.makedirs(LOGS, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    logs = sorted(glob.glob(os.path.join(exp, f"train_{opt['name']}_*.log")))
    with open(os.path.join(LOGS, f'{name}.log'), 'w') as out:
        for log in logs:
            with open(log) as f:
                out.write(f.read())
    k_json = os.path.join(RESULTS, f'{name}_k.json')
    if not os.path.exists(k_json):
        from vheatir.heat_analysis import moved_from_init
        from vheatir.weights import network_from_checkpoint
        net, _, _, _ = network_from_checkpoint(final, opt_path, 'params')
        with open(k_json, 'w') as f:
            json.dump({'checkpoint': final, **moved_from_init(net)}, f, indent=1)
    for suffix, args, _ in EVALUATIONS:
        out = os.path.join(RESULTS, f'{name}_{suffix}.json')
        if not os.path.exists(out):
            subprocess.run([sys.executable, 'scripts/benchmark.py', '--task', 'denoise', *args,
                            '--checkpoint', final, '--option', opt_path, '--checkpoint-key', 'params',
                            '--out', out, '--resume'], env=env, check=True)


def variant_row(name: str) -> Optional[dict]:
    """The table row of one variant from its committed log and JSONs; None if any is missing."""
    log = os.path.join(LOGS, f'{name}.log')
    files = [os.path.join(RESULTS, f'{name}_{suffix}.json') for suffix, _, _ in EVALUATIONS]
    k_json = os.path.join(RESULTS, f'{name}_k.json')
    if not all(os.path.exists(p) for p in [log, k_json, *files]):
        return None
    time = training_time(log)
    row = {'variant': name, 'option': option_file(name), 'iterations': time['iterations'],
           'train_seconds': round(time['seconds']),
           's_per_it': round(time['seconds'] / time['iterations'], 3) if time['iterations'] else None}
    for path, (_, _, cols) in zip(files, EVALUATIONS):
        with open(path) as f:
            for r in json.load(f)['results']:
                col = cols.get((r['set'], int(r['level'])))
                if col:
                    row[col] = round(r['mean']['psnr'], 2)
    with open(k_json) as f:
        k = json.load(f)
    row['median_rel_dk'] = round(k['median_rel_change'], 4) if 'median_rel_change' in k else None
    return row


def table(names: List[str]) -> int:
    rows = [r for r in (variant_row(n) for n in names) if r]
    if not rows:
        print(f'error: no finished variant (logs in {LOGS}, JSONs in {RESULTS})', file=sys.stderr)
        return 2
    base = next((r for r in rows if r['variant'] == 'base'), None)
    float_cols = [c for c in COLUMNS if '8-bit' not in c]
    head = ('| variant | iterations | training s | s/it | ' + ' | '.join(COLUMNS)
            + ' | Δ float (dB) | Δ 8-bit (dB) | 8-bit − float, Set12 σ50 | median |Δk|/k |')
    lines = [head, '|' + '---|' * head.count(' |')]
    for r in rows:
        d_float = d_8bit = ''
        if base is not None:
            d_float = f"{sum(r[c] - base[c] for c in float_cols) / len(float_cols):+.2f}"
            d_8bit = f"{r['Set12 σ50 8-bit'] - base['Set12 σ50 8-bit']:+.2f}"
        dk = '–' if r['median_rel_dk'] is None else f"{100 * r['median_rel_dk']:.2f}%"
        lines.append(f"| {r['variant']} | {r['iterations']:,} | {r['train_seconds']:,} | {r['s_per_it']:.2f} | "
                     + ' | '.join(f'{r[c]:.2f}' for c in COLUMNS)
                     + f" | {d_float} | {d_8bit} | {r['Set12 σ50 8-bit'] - r['Set12 σ50']:+.2f} | {dk} |")
    text = '\n'.join(lines)
    print(text)
    with open(TABLE_JSON, 'w') as f:
        json.dump({'command': 'python scripts/ablations.py table', 'rows': rows}, f, indent=1)
    if os.path.exists(DOC):
        with open(DOC) as f:
            doc = f.read()
        if BEGIN in doc and END in doc:
            doc = doc[:doc.index(BEGIN) + len(BEGIN)] + '\n' + text + '\n' + doc[doc.index(END):]
            with open(DOC, 'w') as f:
                f.write(doc)
            print(f'updated {DOC}')
    return 0


def all_variants() -> List[str]:
    """Variant names with an option file, the baseline first."""
    prefix, suffix = OPTIONS.split('{}')
    names = sorted(p[len(prefix):-len(suffix)] for p in glob.glob(OPTIONS.format('*')))
    return sorted(names, key=lambda n: n != 'base')


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('command', choices=['run', 'table'])
    p.add_argument('variants', nargs='*', help='variant names (default: every option file, baseline first)')
    p.add_argument('--threads', type=int, default=1, help='threads per training and benchmark (default 1)')
    args = p.parse_args(argv)
    os.chdir(ROOT)
    names = args.variants or all_variants()
    missing = [n for n in names if not os.path.exists(option_file(n))]
    if missing:
        print(f'error: no option file {option_file(missing[0])}', file=sys.stderr)
        return 2
    if args.command == 'table':
        return table(names)
    for name in names:
        try:
            run_variant(name, args.threads)
        except subprocess.CalledProcessError as err:
            print(f'error: variant {name}: {" ".join(err.cmd[:3])} exited with {err.returncode}', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
