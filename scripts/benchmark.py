"""Benchmark restoration models on the standard test sets with SwinIR's protocol.

    python scripts/benchmark.py --task denoise --sets BSD68,Set12 --sigmas 15,25,50
    python scripts/benchmark.py --task denoise --sets CBSD68 --sigmas 25 --color
    python scripts/benchmark.py --task jpeg --sets LIVE1,Classic5 --qualities 10,20,30,40

Prints a markdown table and writes JSON (per-image and mean PSNR/SSIM[/PSNR-B], model,
weights sha256, seconds per image). ``--model`` picks our shipped vHeatIR, the shipped
same-budget SwinIR, BM3D, or the degraded input itself; ``--weights FILE`` or
``--checkpoint net_g_N.pth --option OPT.yml`` evaluate any other network.
After each set and level the results so far go to ``<out>.partial``; ``--resume`` reuses the
levels a killed run finished there (same model, weights and settings), so a multi-hour run on a
slow CPU loses at most one level. The protocol is described in ``vheatir/benchmark.py``.
"""
import argparse
import json
import os
import sys
import time

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import vheatir  # noqa: E402,F401
from vheatir.allocator import reuse_freed_memory  # noqa: E402
from vheatir.amp import native_amp  # noqa: E402
from vheatir.atomic import atomic_write  # noqa: E402
from vheatir.complexity import count_flops, count_params  # noqa: E402
from vheatir.benchmark import bm3d_restorer, network_restorer, run_set  # noqa: E402
from vheatir.weights import (DEFAULT_ARCH, default_weights, load_network, network_from_checkpoint,  # noqa: E402
                             MANIFEST, read_manifest, sha256_of, update_manifest)

COLOR_SETS = {'CBSD68'}
GRAY_SETS = {'BSD68', 'Set12', 'Classic5'}


def parse_list(text: str, cast):
    return [cast(v) for v in text.split(',') if v.strip()]


def load_model(args: argparse.Namespace, color: bool, device: torch.device) -> tuple:
    """(network, info dict) for --model vheatir/swinir from --checkpoint+--option, --weights or the manifest."""
    if args.checkpoint:
        net, arch, _, key = network_from_checkpoint(args.checkpoint, args.option, args.checkpoint_key)
        meta = {'checkpoint': args.checkpoint, 'checkpoint_key': key, 'option': args.option,
                'weights_sha256': sha256_of(args.checkpoint)}
    else:
        arch = {'vheatir': DEFAULT_ARCH, 'swinir': 'SwinIR'}[args.model]
        path = args.weights or default_weights(args.task, 'color' if color else 'gray', args.manifest, arch=arch)
        net, info = load_network(path)
        arch = info['arch']
        meta = {'weights': os.path.relpath(path), 'weights_sha256': sha256_of(path),
                'weights_meta': info['meta'], 'weights_level': info['level']}
    # FLOPs at 256 x 256: the cost column of the head-to-head table (docs/benchmarks.md).
    gflops = round(count_flops(net, 3 if color else 1, 256) / 1e9, 2)
    return net.to(device), {'arch': arch, **meta, 'gflops_256': gflops}


def record_in_manifest(info: dict, results: list, json_path: str, manifest: str) -> int:
    """Store each set/level mean under 'benchmark' of the manifest entry with these weights' sha256."""
    entries = [e for e in read_manifest(manifest) if e.get('sha256') == info.get('weights_sha256')]
    if not entries:
        print(f'error: --record: these weights are not listed in {manifest}', file=sys.stderr)
        return 2
    entry = entries[0]
    bench = entry.setdefault('benchmark', {})
    level_name = 'sigma' if info['task'] == 'denoise' else 'q'
    for r in results:
        scores = {k: round(v, 4 if k.startswith('ssim') else 2) for k, v in r['mean'].items()}
        suffix = (' 8-bit' if info.get('input') == '8-bit' else '') + (' sigma-auto' if 'sigma' in info else '')
        bench[f"{r['set']} {level_name}{r['level']:g}{suffix}"] = {**scores, 'json': os.path.relpath(json_path),
                                                          'command': ' '.join(['python'] + sys.argv)}
    update_manifest(entry, manifest)
    print(f'recorded in {manifest}')
    return 0


def write_json(path: str, payload: dict) -> None:
    """Write payload as indented JSON through :func:`vheatir.compat.atomic_write`."""
    atomic_write(path, lambda f: f.write(json.dumps(payload, indent=1).encode()))


def finished_levels(partial: str, info: dict) -> dict:
    """{(set, level): result} a killed run with the same info left in partial; ValueError if info differs."""
    if not os.path.exists(partial):
        return {}
    try:
        with open(partial) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{partial}: unreadable ({e}); delete it or drop --resume') from None
    old = saved.get('info', {})
    changed = sorted(k for k in set(info) | set(old) if info.get(k) != old.get(k))
    if changed:
        raise ValueError(f'{partial} was written with other settings ({", ".join(changed)}); '
                         'delete it or drop --resume')
    return {(r['set'], r['level']): r for r in saved.get('results', [])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--task', choices=['denoise', 'jpeg'], required=True)
    p.add_argument('--sets', required=True, help='comma-separated folder names under --root')
    p.add_argument('--sigmas', default='15,25,50', help='noise levels on the 0-255 scale (denoise)')
    p.add_argument('--qualities', default='10,20,30,40', help='JPEG qualities (jpeg)')
    p.add_argument('--color', action='store_true', help='colour model and colour protocol (CBSD68 implies it)')
    p.add_argument('--model', choices=['vheatir', 'swinir', 'bm3d', 'input'], default='vheatir',
                   help='vheatir / swinir: shipped weights of that arch, or --weights / --checkpoint; '
                        'bm3d: PyPI bm3d at the true sigma (denoise); input: the degraded input itself')
    p.add_argument('--weights', default=None, help='a weights file (default: the shipped one for task and colour)')
    p.add_argument('--checkpoint', default=None, help='a BasicSR net_g_*.pth of any registered arch, with --option')
    p.add_argument('--option', default=None, help='the option file whose network_g the --checkpoint fits')
    p.add_argument('--checkpoint-key', choices=('params', 'params_ema'), default=None,
                   help='weights of the --checkpoint to test (default: params_ema where present)')
    p.add_argument('--eight-bit', action='store_true',
                   help='denoise: round and clip the noisy input to 8 bits (what a noisy PNG holds) '
                        'instead of SwinIR\'s float, unclipped input')
    p.add_argument('--sigma-auto', action='store_true',
                   help="denoise: give the network the σ that --sigma auto estimates from each noisy input, "
                        "not the true one (the guardrail of docs/real_noise.md)")
    p.add_argument('--root', default='datasets', help='folder holding the test sets')
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', default=None, choices=[None, 'bf16', 'fp16'], help='autocast for the network')
    p.add_argument('--self-ensemble', action='store_true',
                   help='mean over the 8 flips/rotations of each image (8x the time; the "+" models of EDSR+)')
    p.add_argument('--record', action='store_true',
                   help='also write the mean scores into the manifest, under the entry of these weights')
    p.add_argument('--manifest', default=MANIFEST, help='weights manifest (default weights/manifest.json)')
    p.add_argument('--out', default=None, help='JSON path (default docs/results/<task>_<model>_<sets>.json)')
    p.add_argument('--resume', action='store_true',
                   help='reuse the set/levels already finished in <out>.partial by a killed run')
    args = p.parse_args()
    reuse_freed_memory()

    sets = parse_list(args.sets, str)
    levels = parse_list(args.sigmas if args.task == 'denoise' else args.qualities, float)
    color = args.color or any(s in COLOR_SETS for s in sets)
    if color and any(s in GRAY_SETS for s in sets):
        p.error(f'--sets mixes gray-only and colour sets: {sets}')
    device = torch.device(args.device)

    if args.eight_bit and args.task != 'denoise':
        p.error('--eight-bit is for --task denoise (a JPEG input is 8-bit already)')
    if args.sigma_auto and (args.task != 'denoise' or args.model not in ('vheatir', 'swinir')):
        p.error('--sigma-auto is for --task denoise with a network (--model vheatir or swinir)')
    if args.model == 'bm3d' and args.task != 'denoise':
        p.error('--model bm3d is a denoiser: use it with --task denoise')
    if args.record and (args.model not in ('vheatir', 'swinir') or args.checkpoint):
        p.error('--record needs a weights file listed in the manifest (--model vheatir/swinir, no --checkpoint)')
    if args.record and args.self_ensemble:
        p.error('--record writes the plain model\'s scores into the manifest: run --self-ensemble without it')
    if args.self_ensemble and args.model not in ('vheatir', 'swinir'):
        p.error('--self-ensemble needs a network (--model vheatir or swinir)')
    if bool(args.checkpoint) != bool(args.option) or (args.checkpoint and args.weights):
        p.error('give --checkpoint together with --option, and not with --weights')

    args.amp = native_amp(device, args.amp, lambda msg: print(f'note: --{msg}', file=sys.stderr))
    # The CPU's vector level: seconds per image from an AVX2 and an AVX-512 host differ.
    info = {'model': args.model, 'task': args.task, 'color': color, 'protocol': 'SwinIR (see vheatir/benchmark.py)',
            'cpu_capability': torch.backends.cpu.get_cpu_capability()}
    if args.eight_bit:
        info['input'] = '8-bit'  # absent: SwinIR's float input
    if args.sigma_auto:
        info['sigma'] = 'auto'  # absent: the true sigma
    net = None
    if args.model in ('vheatir', 'swinir'):
        try:
            net, meta = load_model(args, color, device)
        except (OSError, ValueError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        if args.sigma_auto and not getattr(net, 'cond_chans', 0):
            print(f'error: --sigma-auto: {args.checkpoint or meta.get("weights") or args.model} has no noise-level '
                  'input, so an estimated sigma would change nothing', file=sys.stderr)
            return 2
        info.update(meta, parameters=count_params(net), amp=args.amp, self_ensemble=args.self_ensemble)

    variant = ('_8bit' if args.eight_bit else '') + ('_sigma-auto' if args.sigma_auto else '')
    out = args.out or os.path.join('docs', 'results', f"{args.task}_{'color' if color else 'gray'}_{args.model}_"
                                   f"{'-'.join(sets)}{variant}.json")
    partial = out + '.partial'
    try:
        done = finished_levels(partial, info) if args.resume else {}
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    command = ' '.join(['python'] + sys.argv)
    results = []
    for name in sets:
        for level in levels:
            if (name, level) in done:
                results.append(done[(name, level)])
                print(f'{name} {level:g}: reused from {partial}', file=sys.stderr)
                continue
            if args.model == 'bm3d':
                restorer = bm3d_restorer(level)
            else:
                restorer = None if net is None else network_restorer(
                    net, args.task, None if args.sigma_auto else level, device, args.amp, args.self_ensemble)
            start = time.time()
            try:
                r = run_set(restorer, os.path.join(args.root, name), args.task, color, level, args.eight_bit)
            except ValueError as e:
                print(f'error: {e}', file=sys.stderr)
                return 2
            r.update(set=name, level=level, wall_seconds=time.time() - start)
            results.append(r)
            write_json(partial, {'info': info, 'command': command, 'results': results})
            m = r['mean']
            print(f"{name} {'sigma' if args.task == 'denoise' else 'q'}={level:g}: "
                  f"PSNR {m['psnr']:.2f} SSIM {m['ssim']:.4f}" + (f" PSNR-B {m['psnrb']:.2f}" if 'psnrb' in m else '')
                  + f" ({r['seconds_per_image']:.2f} s/image)", file=sys.stderr, flush=True)

    level_name = 'σ' if args.task == 'denoise' else 'q'
    metric_names = ['psnr', 'ssim'] + (['psnrb'] if args.task == 'jpeg' else [])
    print(f"\n| set | {level_name} | " + ' | '.join(m.upper().replace('PSNRB', 'PSNR-B') for m in metric_names)
          + ' | s/image |')
    print('|---|---|' + '---|' * (len(metric_names) + 1))
    for r in results:
        vals = ' | '.join(f"{r['mean'][m]:.4f}" if m == 'ssim' else f"{r['mean'][m]:.2f}" for m in metric_names)
        print(f"| {r['set']} | {r['level']:g} | {vals} | {r['seconds_per_image']:.2f} |")

    write_json(out, {**info, 'command': command, 'results': results})
    if os.path.exists(partial):
        os.remove(partial)
    print(f'\nwrote {out}')
    if args.record:
        return record_in_manifest(info, results, out, args.manifest)
    return 0


if __name__ == '__main__':
    sys.exit(main())
