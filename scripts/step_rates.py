"""Seconds per training iteration from BasicSR training logs, and what an equal CPU-time budget buys.

    python scripts/step_rates.py vHeatIR-S=docs/logs/train_vHeatIR_S_jpeg_gray_q10b.log \\
        SwinIR-S=docs/logs/train_SwinIR_S_denoise_gray_equal_iter_5000.log --budget vHeatIR-S:5000

Each log line ``<date> <time>,<ms> INFO: [...][epoch: E, iter: N, ...]`` is a print point; the
seconds between two consecutive print points over the iterations between them give one interval
rate; an interval spanning a restart (a ``Start training from`` line, as in a resumed run's log
appended to the first) is not one. A model's rate is the median over the intervals of all its
logs (validation pauses and other outliers fall out of the median). ``--budget MODEL:N``
prints, for every model, how many of its iterations take as long as N iterations of MODEL.
Prints a markdown table.
"""
import argparse
import datetime
import re
import statistics
import sys
from typing import List, Optional

PRINT_POINT = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ INFO: \[.*?iter:\s*([\d,]+),')
RESTART = 'INFO: Start training from'


def interval_rates(path: str) -> List[float]:
    """Seconds per iteration of each interval between consecutive print points of one log."""
    rates, last = [], None
    with open(path) as f:
        for line in f:
            if RESTART in line:
                last = None
                continue
            m = PRINT_POINT.match(line)
            if m:
                point = (datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S'), int(m.group(2).replace(',', '')))
                if last is not None and point[1] > last[1]:
                    rates.append((point[0] - last[0]).total_seconds() / (point[1] - last[1]))
                last = point
    return rates


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+', help='NAME=log[,log...]')
    p.add_argument('--budget', default=None, help='MODEL:ITERATIONS, the reference run of the equal-time budget')
    args = p.parse_args(argv)
    rates = {}
    for spec in args.models:
        name, _, logs = spec.partition('=')
        try:
            intervals = [r for log in logs.split(',') for r in interval_rates(log)]
        except OSError as err:
            print(f'error: {err.filename}: {err.strerror}', file=sys.stderr)
            return 2
        if not intervals:
            print(f'error: {logs}: no training print points found', file=sys.stderr)
            return 2
        rates[name] = (statistics.median(intervals), len(intervals))
    budget_s = None
    if args.budget:
        ref, _, iters = args.budget.partition(':')
        if ref not in rates or not iters.isdigit():
            print(f'error: --budget {args.budget}: give MODEL:ITERATIONS with a MODEL listed above', file=sys.stderr)
            return 2
        budget_s = rates[ref][0] * int(iters)
    head = '| model | intervals | s / iteration |' + (f' iterations in {budget_s:,.0f} s |' if budget_s else '')
    print(head + '\n|' + '---|' * head.count(' |'))
    for name, (rate, n) in rates.items():
        print(f'| {name} | {n} | {rate:.2f} |' + (f' {budget_s / rate:,.0f} |' if budget_s else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
