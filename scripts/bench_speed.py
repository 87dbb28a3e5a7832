"""Speed and memory of the heat-conduction operator and vHeatIR-S, side by side with Swin/SwinIR.

    python scripts/bench_speed.py                 # everything (about 15 minutes on 2 cores)
    python scripts/bench_speed.py --sections dct,op --sizes 64,128,256

Sections (CPU, batch 1, width 48, MLP ratio 2, window 8 for Swin):
  op   HeatBlock vs basicsr's SwinTransformerBlock: forward and forward+backward, fp32 and bf16.
  net  vHeatIR-S (colour) vs basicsr's SwinIR at about the same parameter count, inference.
  dct  DCT-II + inverse: cosine matrices vs torch FFT vs pocketfft vs ducc0 (when installed), and what
       dct_impl='auto' picks.
  step  one gray training step (48 x 48 patches, batch 16, bf16 autocast, L1, Adam) of vHeatIR-S with
       the cosine-matrix DCT in float32, the same in bf16 (dct_amp), pocketfft and ducc0, and of SwinIR-S
       (the same-budget baseline): patches per second, and what dct_impl='auto' picks.
  flops  achieved GFLOP/s of the vHeatIR-S forward against this machine's matmul peak.
  flop_ratio  FLOPs of each side of the op (``--sizes``) and net (``--flops-sizes``) comparisons,
       forward: the speed-up that equal efficiency would give. Counts only, no timing.
  malloc  vHeatIR-S and SwinIR colour inference with glibc's default mmap threshold and with
       vheatir.allocator.reuse_freed_memory (the command lines' setting), each in a fresh process.
  tile  vheatir.restore on one colour photo (--tile-image), whole and in tiles of each --tile-sizes side,
       per dtype: seconds per megapixel (what CPU_TILE in vheatir/api.py is chosen from).
  user  the whole `inference.py --task denoise --sigma 15` command in a child process on colour photos
       (0.5 MP, 2 MP, a folder of four 0.5 MP, 12 MP on one thread), per engine and dtype, best of
       --user-repeats: seconds per megapixel and peak RSS; variant cbm3d: CBM3D on the 0.5 MP photo. Variant
       'baseline' runs the default command of another checkout (--user-baseline) in turn with them;
       variant jpeg, `inference.py --task jpeg` on the same photos saved as JPEG quality 40.
  peers  gray denoising of one BSD68-sized image: the shipped gray denoiser per engine and dtype, DnCNN, FFDNet,
       DRUNet and SwinIR (architectures at random initialisation) and BM3D, in s/MP, beside their
       BSD68 sigma 25 PSNR (published for the peers, measured for ours and BM3D); the picture is
       drawn by scripts/plot_quality_speed.py --speed.
Timing: A and B run alternately, ``--repeats`` times each; medians and the ratio of medians are
reported. Peak memory: resident-set growth over the call, sampled every 0.5 ms by a thread.
Prints markdown tables; writes JSON (``--out``) and a log-log plot (``--plot``). ``--readme README.md
--docs docs/speed.md`` rewrite the user tables in those files from the JSON (``--sections ''``: only that).
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# the repository (for vheatir) and scripts/ (for results_tables, read lazily)
SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path[0:1] = [os.path.dirname(SCRIPTS), SCRIPTS]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import vheatir  # noqa: E402,F401
from vheatir.allocator import REUSE_MMAP_THRESHOLD, release_free_memory, set_mmap_threshold  # noqa: E402
from vheatir.atomic import atomic_write  # noqa: E402
from vheatir.docblocks import rewrite_files  # noqa: E402
from vheatir.complexity import count_flops, count_params, flops_of  # noqa: E402
from basicsr.archs.swinir_arch import SwinIR, SwinTransformerBlock  # noqa: E402
from vheatir.archs.heat_ops import FrequencyValueEmbedding, choose_dct_impl, dct2, ducc0_module, idct2  # noqa: E402
from vheatir.archs.vheatir_arch import HeatBlock, VHeatIR  # noqa: E402
from vheatir.archs.window_pad import forward_padded  # noqa: E402

WIDTH, MLP_RATIO, WINDOW, HEADS = 48, 2.0, 8, 3
PAGE = os.sysconf('SC_PAGE_SIZE')
# Timing runs under the command lines' malloc setting (vheatir.allocator.reuse_freed_memory:
# freed blocks up to 1 GiB are reused), so the tables show what inference.py and train.py get;
# the malloc section compares it with glibc's default. Peak memory is measured the other way
# round: resident-set growth only shows a call's peak if freed memory goes back to the OS.
TIMING_MMAP_THRESHOLD, PEAK_MMAP_THRESHOLD = REUSE_MMAP_THRESHOLD, 64 * 2**10
set_mmap_threshold(TIMING_MMAP_THRESHOLD)


def rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * PAGE


def peak_growth(fn: Callable[[], object]) -> int:
    """Peak resident-set growth in bytes while ``fn`` runs (sampled every 0.5 ms)."""
    set_mmap_threshold(PEAK_MMAP_THRESHOLD)
    release_free_memory()
    base = rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.0005)

    t = threading.Thread(target=sample)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
        set_mmap_threshold(TIMING_MMAP_THRESHOLD)
    return max(peak[0], rss_bytes()) - base


def alternate(fns: Sequence[Callable[[], object]], repeats: int, min_total: float = 0.0) -> List[float]:
    """Median seconds of each function, run in turn ``repeats`` times after one warm-up each.

    ``min_total`` (seconds) raises the repeats until the slowest function's warm-up time times
    the repeats reaches it (at most 200), so millisecond calls get enough samples for a steady
    median.
    """
    warm = []
    for f in fns:
        s = time.perf_counter(); f(); warm.append(time.perf_counter() - s)  # noqa: E702
    repeats = max(repeats, min(200, math.ceil(min_total / max(max(warm), 1e-6))))
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for f, ts in zip(fns, times):
            s = time.perf_counter(); f(); ts.append(time.perf_counter() - s)  # noqa: E702
    return [statistics.median(ts) for ts in times]


class HeatBlockOp(nn.Module):
    """One HeatBlock with its own FVE, on (B, H, W, C) tokens."""

    def __init__(self):
        super().__init__()
        self.fve = FrequencyValueEmbedding(WIDTH)
        self.block = HeatBlock(WIDTH, WIDTH, MLP_RATIO)

    def forward(self, x):
        return self.block(x, self.fve)


class SwinBlockOp(nn.Module):
    """basicsr's SwinTransformerBlock (W-MSA, no shift) on the same (B, H, W, C) tokens."""

    def __init__(self, size: int):
        super().__init__()
        self.block = SwinTransformerBlock(WIDTH, (size, size), HEADS, WINDOW, 0, MLP_RATIO)

    def forward(self, x):
        b, h, w, c = x.shape
        return self.block(x.reshape(b, h * w, c), (h, w)).reshape(b, h, w, c)


def run_op(mod: nn.Module, x: torch.Tensor, backward: bool, amp: bool) -> Callable[[], None]:
    def step():
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
            if backward:
                xx = x.detach().requires_grad_(True)
                mod(xx).float().sum().backward()
            else:
                with torch.inference_mode():
                    mod(x)
    return step


def section_op(sizes: List[int], fwd_only: List[int], repeats: int) -> List[dict]:
    rows = []
    for size in sizes + fwd_only:
        for amp in (False, True):
            for backward in ((False,) if size in fwd_only else (False, True)):
                torch.manual_seed(0)
                heat, swin = HeatBlockOp(), SwinBlockOp(size)
                x = torch.randn(1, size, size, WIDTH)
                fa, fb = run_op(heat, x, backward, amp), run_op(swin, x, backward, amp)
                ta, tb = alternate((fa, fb), repeats if size <= 512 else 1)
                ma, mb = peak_growth(fa), peak_growth(fb)
                row = dict(size=size, mode='fwd+bwd' if backward else 'fwd', dtype='bf16' if amp else 'fp32',
                           heat_s=ta, swin_s=tb, speedup=tb / ta, heat_mb=ma / 2**20, swin_mb=mb / 2**20,
                           mem_ratio=ma / mb if mb else float('nan'))
                rows.append(row)
                print(f"op {size}² {row['mode']} {row['dtype']}: heat {ta*1e3:.1f} ms, swin {tb*1e3:.1f} ms "
                      f"(x{row['speedup']:.2f}); peak {row['heat_mb']:.0f} vs {row['swin_mb']:.0f} MB", flush=True)
                del heat, swin, x
    return rows


def vheatir_s() -> VHeatIR:
    return VHeatIR(in_chans=3, embed_dim=48, depths=[3, 3, 3, 3], mlp_ratio=2, cond_chans=1).eval()


def swinir_like(in_chans: int = 3) -> nn.Module:
    # basicsr's SwinIR at about vHeatIR-S's parameter count: no upsampler, upscale 1, window 8.
    return SwinIR(upscale=1, in_chans=in_chans, img_size=64, window_size=WINDOW, img_range=1.0, depths=[3, 3, 3, 3],
                  embed_dim=48, num_heads=[HEADS] * 4, mlp_ratio=MLP_RATIO, upsampler='', resi_connection='1conv').eval()


def section_net(sizes: List[int], repeats: int) -> List[dict]:
    torch.manual_seed(0)
    heat, swin = vheatir_s(), swinir_like()
    ph, ps = count_params(heat), count_params(swin)
    rows = []
    for size in sizes:
        x = torch.rand(1, 3, size, size)
        c = torch.full((1, 1), 0.1)
        for amp in (False, True):
            def fa():
                with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
                    heat(x, c)

            def fb():
                with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
                    swin(x)
            ta, tb = alternate((fa, fb), repeats if size <= 512 else 1)
            ma, mb = peak_growth(fa), peak_growth(fb)
            row = dict(size=size, dtype='bf16' if amp else 'fp32', vheatir_s=ta, swinir_s=tb, speedup=tb / ta,
                       vheatir_mb=ma / 2**20, swinir_mb=mb / 2**20, vheatir_params=ph, swinir_params=ps)
            rows.append(row)
            print(f"net {size}² {row['dtype']}: vHeatIR-S {ta:.3f} s, SwinIR {tb:.3f} s (x{row['speedup']:.2f}); "
                  f"peak {row['vheatir_mb']:.0f} vs {row['swinir_mb']:.0f} MB", flush=True)
    return rows


DCT_PATHS = ('matrix', 'fft', 'scipy') + (('ducc',) if ducc0_module() is not None else ())


def section_dct(sizes: List[Tuple[int, int, int, int]], repeats: int) -> List[dict]:
    rows = []
    for b, h, w, c in sizes:
        x = torch.randn(b, h, w, c)

        def pair(impl):
            def f():
                with torch.inference_mode():
                    idct2(dct2(x, impl), impl)
            return f
        times = dict(zip(DCT_PATHS, alternate([pair(impl) for impl in DCT_PATHS], repeats, min_total=0.3)))
        auto = choose_dct_impl(x.shape, x.device)
        best = min(times.values())
        rows.append(dict(batch=b, h=h, w=w, c=c, **{f'{k}_s': t for k, t in times.items()}, auto=auto,
                         auto_vs_best=times[auto] / best))
        print(f'dct {b}x{h}x{w}x{c}: ' + ', '.join(f'{k} {t * 1e3:.2f} ms' for k, t in times.items()) +
              f', auto={auto} ({times[auto] / best:.2f}x best)', flush=True)
    return rows


STEP_NAMES = ('matrix', 'matrix_bf16', *DCT_PATHS[2:], 'swinir')


def step_networks() -> Dict[str, nn.Module]:
    """The training-step contenders (gray, in training mode): vHeatIR-S with each DCT path and SwinIR-S."""
    def heat(**kwargs) -> nn.Module:
        return VHeatIR(in_chans=1, embed_dim=48, depths=[3, 3, 3, 3], mlp_ratio=2, cond_chans=1, **kwargs)
    nets = (heat(dct_impl='matrix'), heat(dct_impl='matrix', dct_amp=True),
            *[heat(dct_impl=impl) for impl in DCT_PATHS[2:]], swinir_like(in_chans=1).train())
    return dict(zip(STEP_NAMES, nets))


def section_step(repeats: int) -> List[dict]:
    torch.manual_seed(0)
    x, gt, cond = torch.rand(16, 1, 48, 48), torch.rand(16, 1, 48, 48), torch.rand(16, 1)
    nets = step_networks()
    steps = []
    for net in nets.values():
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)

        def step(net=net, opt=opt):
            opt.zero_grad(set_to_none=True)
            with torch.autocast('cpu', dtype=torch.bfloat16):
                out = forward_padded(net, x, cond)
            nn.functional.l1_loss(out.float(), gt).backward()
            opt.step()
        steps.append(step)
    times = dict(zip(nets, alternate(steps, repeats)))
    row = dict(patch=48, batch=16, dtype='bf16', threads=torch.get_num_threads(), auto=choose_dct_impl((16, 48, 48, 48)),
               **{f'{k}_s': t for k, t in times.items()}, **{f'{k}_patches_per_s': 16 / t for k, t in times.items()})
    print('step 16x48² bf16 autocast: ' + ', '.join(f'{k} {16 / t:.1f} patches/s' for k, t in times.items()) +
          f", auto = {row['auto']}", flush=True)
    return [row]


def section_flop_ratio(op_sizes: List[int], net_sizes: List[int]) -> List[dict]:
    """Arithmetic of each side of the op and net comparisons: the speed-up if both ran equally efficiently."""
    torch.manual_seed(0)
    rows = []
    for size in op_sizes:
        heat, swin = HeatBlockOp(), SwinBlockOp(size)
        x = torch.randn(1, size, size, WIDTH)
        rows.append(dict(level='block', size=size, heat_gflop=flops_of(heat, lambda: heat(x)) / 1e9,
                         swin_gflop=flops_of(swin, lambda: swin(x)) / 1e9))
    heat, swin = vheatir_s(), swinir_like()
    for size in net_sizes:
        rows.append(dict(level='network', size=size, heat_gflop=count_flops(heat, 3, size) / 1e9,
                         swin_gflop=count_flops(swin, 3, size, cond=None) / 1e9))
    for row in rows:
        row['flop_ratio'] = row['swin_gflop'] / row['heat_gflop']
        print(f"flops {row['level']} {row['size']}²: heat {row['heat_gflop']:.2f}, swin {row['swin_gflop']:.2f} GFLOP "
              f"(swin/heat {row['flop_ratio']:.2f})", flush=True)
    return rows


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    ts = []
    for _ in range(repeats):
        s = time.perf_counter(); a @ b; ts.append(time.perf_counter() - s)  # noqa: E702
    return 2 * n**3 / min(ts) / 1e9


def section_flops(sizes: List[int], repeats: int) -> List[dict]:
    torch.manual_seed(0)
    net = vheatir_s()
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    rows = []
    for size in sizes:
        x, c = torch.rand(1, 3, size, size), torch.full((1, 1), 0.1)
        flop = count_flops(net, 3, size)
        for amp in (False, True):
            def f():
                with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
                    net(x, c)
            t, = alternate((f,), repeats)
            gflops = flop / t / 1e9
            peak = peak16 if amp else peak32
            rows.append(dict(size=size, dtype='bf16' if amp else 'fp32', gflop=flop / 1e9, seconds=t,
                             gflops_per_s=gflops, matmul_peak=peak, fraction_of_peak=gflops / peak))
            print(f"flops {size}² {'bf16' if amp else 'fp32'}: {flop / 1e9:.1f} GFLOP in {t:.3f} s = "
                  f'{gflops:.1f} GFLOP/s ({100 * gflops / peak:.0f}% of matmul peak {peak:.0f})', flush=True)
    return rows


def photo(height: int, width: int, seed: int = 0, sigma: float = 15) -> np.ndarray:
    """A colour photo of height x width (uint8 RGB): scikit-image's astronaut resized, with
    Gaussian noise of ``sigma`` (0-255 scale; 0 for the clean photo)."""
    import cv2
    from vheatir.data.samples import sample_image
    clean = cv2.resize(sample_image('astronaut', False), (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = clean + np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def section_tile(height: int, width: int, tiles: List[int], dtypes: List[str]) -> List[dict]:
    """vheatir.restore (shipped colour weights, sigma 15) on one photo, whole and in tiles of each side."""
    import vheatir
    img = photo(height, width)
    rows = []
    for dtype in dtypes:
        amp = None if dtype == 'fp32' else dtype
        fns = [lambda t=t: vheatir.restore(img, sigma=15, tile=t or None, tile_overlap=min(32, t // 4) if t else 32,
                                            amp=amp, device='cpu', memory_budget_gb=64)
               for t in [0] + tiles]
        times = alternate(fns, 1)
        for t, seconds in zip([0] + tiles, times):
            rows.append(dict(image=f'{width}x{height}', dtype=dtype, tile=t or 'whole', seconds=seconds,
                             s_per_mp=seconds / (height * width / 1e6), vs_whole=times[0] / seconds))
            print(f"tile {rows[-1]['tile']} {dtype}: {seconds:.2f} s, {rows[-1]['s_per_mp']:.1f} s/MP", flush=True)
    return rows


# The user-level table: the whole `inference.py` command (start-up included) in a child process.
USER_CASES = [  # (name, photos as (height, width), threads; 0 = all)
    ('0.5 MP', [(600, 800)], 0),
    ('2 MP', [(1200, 1600)], 0),
    ('four 0.5 MP (a folder)', [(600, 800)] * 4, 0),
    ('12 MP, one thread', [(3000, 4000)], 1),
]


# The command runs as the grandchild of this small Python, which times it and reports its peak RSS:
# a child started straight from this process would report at least this process's own peak, as
# Linux carries the high-water mark of the parent's memory over fork and exec.
RUSAGE_CHILD = r"""
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], 'w') as f:
    f.write(f'{seconds} {usage.ru_maxrss * 1024}')
sys.exit(os.waitstatus_to_exitcode(status) & 255)
"""


def run_child(cmd: List[str], threads: int, extra_env: Optional[Dict[str, str]] = None) -> Tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process running ``cmd``, with ``extra_env``
    added to its environment; RuntimeError if it fails."""
    import subprocess
    import tempfile
    env = dict(os.environ, **(extra_env or {}))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, 'rusage')
        proc = subprocess.run([sys.executable, '-c', RUSAGE_CHILD, report, *cmd], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors='replace')
            raise RuntimeError(f'{" ".join(cmd)} failed: {err.strip()[-500:]}')
        with open(report) as f:
            seconds, peak = f.read().split()
    return float(seconds), int(peak)


BM3D_CHILD = r"""
import sys, numpy as np, bm3d, cv2
img = cv2.imread(sys.argv[1])[..., ::-1].astype(np.float32) / 255
bm3d.bm3d_rgb(img, 15 / 255)
"""


def section_user(variants: List[str], cases: List[str], repeats: int, baseline: str = '') -> List[dict]:
    """Seconds per megapixel and peak RSS of `inference.py --task denoise --sigma 15` per case and variant
    (torch-fp32, torch-bf16, onnxruntime; 'glibc': torch-bf16 kept on glibc's malloc instead of
    jemalloc; 'baseline': the default command of the checkout at ``baseline``, e.g. an older
    revision, run in turn with the others; 'jpeg': the default `inference.py --task jpeg` on the
    same photos without noise saved as JPEG quality 40, the quality read from the file), best of
    ``repeats``; variant 'cbm3d': CBM3D (PyPI bm3d) on the 0.5 MP photo."""
    import tempfile
    import cv2
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    flags = {'torch-fp32': ['--amp', 'fp32'], 'torch-bf16': ['--amp', 'bf16'], 'onnxruntime': ['--engine', 'onnxruntime'],
             'glibc': ['--amp', 'bf16'], 'baseline': [], 'jpeg': []}
    envs = {'glibc': {'VHEATIR_ALLOCATOR': 'system'}}
    if 'baseline' in variants and not os.path.isfile(os.path.join(baseline, 'inference.py')):
        raise SystemExit(f'error: variant baseline needs --user-baseline DIR with an inference.py, got {baseline!r}')
    unknown = [v for v in variants if v not in (*flags, 'cbm3d')]
    if unknown:
        raise SystemExit(f'error: unknown user variant(s) {", ".join(unknown)}; '
                         f'choose from {", ".join(flags)}, cbm3d')
    commands = [v for v in variants if v in flags]   # cbm3d runs its own child below
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault('VHEATIR_ONNX_CACHE', os.path.join(tmp, 'onnx'))
        folders, jpeg_folders = {}, {}
        for name, shapes, _ in USER_CASES:
            folders[name] = os.path.join(tmp, f'in{len(folders)}')
            jpeg_folders[name] = folders[name] + '_jpeg'
            os.makedirs(folders[name]), os.makedirs(jpeg_folders[name])
            for i, (h, w) in enumerate(shapes):
                cv2.imwrite(os.path.join(folders[name], f'{i}.png'), photo(h, w, i)[..., ::-1])
                if 'jpeg' in variants:
                    cv2.imwrite(os.path.join(jpeg_folders[name], f'{i}.jpg'), photo(h, w, i, sigma=0)[..., ::-1],
                                [cv2.IMWRITE_JPEG_QUALITY, 40])

        def command(case: str, variant: str) -> List[str]:
            script = os.path.join(baseline if variant == 'baseline' else root, 'inference.py')
            task = (['--task', 'jpeg', '--input', jpeg_folders[case]] if variant == 'jpeg'
                    else ['--task', 'denoise', '--sigma', '15', '--input', folders[case]])
            return [sys.executable, script, *task, '--output', os.path.join(tmp, 'out'), *flags[variant]]

        if 'onnxruntime' in variants:   # the one-off export is not what a user waits for each time
            run_child(command('0.5 MP', 'onnxruntime'), 0)
        for name, shapes, threads in USER_CASES:
            if name not in cases:
                continue
            mp = sum(h * w for h, w in shapes) / 1e6
            runs_of = {v: [] for v in commands}
            for _ in range(repeats):   # variants in turn, so a drift of the machine hits them alike
                for variant in commands:
                    runs_of[variant].append(run_child(command(name, variant), threads,
                                                          envs.get(variant)))
            for variant, runs in runs_of.items():
                seconds, peak = min(r[0] for r in runs), max(r[1] for r in runs)
                rows.append(dict(case=name, variant=variant, threads=threads or torch.get_num_threads(),
                                 megapixels=round(mp, 2), seconds=seconds, s_per_mp=seconds / mp,
                                 peak_mb=peak / 2**20))
                print(f'{name} {variant}: {seconds:.1f} s, {seconds / mp:.1f} s/MP, peak {peak / 2**20:.0f} MB',
                      flush=True)
        if '0.5 MP' in cases and 'cbm3d' in variants:
            runs = [run_child([sys.executable, '-c', BM3D_CHILD, os.path.join(folders['0.5 MP'], '0.png')], 0)
                    for _ in range(repeats)]
            seconds = min(r[0] for r in runs)
            rows.append(dict(case='0.5 MP', variant='CBM3D', threads=torch.get_num_threads(), megapixels=0.48,
                             seconds=seconds, s_per_mp=seconds / 0.48, peak_mb=max(r[1] for r in runs) / 2**20))
            print(f"0.5 MP CBM3D: {seconds:.1f} s, peak {rows[-1]['peak_mb']:.0f} MB", flush=True)
    return rows


# What each case is called in the tables, and its goal from issue 23: (ratio to "before" as text and
# number, peak MB or None).
USER_LABELS = {'0.5 MP': 'one 0.5 MP photo (800×600)', '2 MP': 'one 2 MP photo (1600×1200)',
               'four 0.5 MP (a folder)': 'a folder of four 0.5 MP photos',
               '12 MP, one thread': 'one 12 MP photo (4000×3000), one thread'}
USER_GOALS = {'2 MP': ('⅓', 1 / 3, None), 'four 0.5 MP (a folder)': ('½', 1 / 2, None),
              '12 MP, one thread': ('½', 1 / 2, 4096)}
# "Before" where no 'baseline' row was measured: the issue's 12 MP "now", from the AMD EPYC of an
# earlier session (too slow to run as a 'baseline' variant each time), as the table shows it.
USER_BEFORE_ISSUE = {'12 MP, one thread': (559.0, '559 s, 7.3 GB (AMD EPYC)')}
USER_OTHER_VARIANTS = [('glibc', '`VHEATIR_ALLOCATOR=system`'), ('torch-fp32', '`--amp fp32`'),
                       ('onnxruntime', '`--engine onnxruntime`'), ('jpeg', '`--task jpeg` (vHeatIR-M)')]


def _seconds(seconds: float) -> str:
    return f'{seconds:.0f} s' if seconds >= 100 else f'{seconds:.1f} s'


def _user_cell(row: dict, bold: bool = False) -> str:
    b = '**' if bold else ''
    time_s = _seconds(row['seconds']) if row['seconds'] >= 100 else f"{row['s_per_mp']:.1f} s/MP"
    return f"{b}{time_s}{b}, {row['peak_mb']:.0f} MB"


def user_blocks(rows: List[dict]) -> Dict[str, str]:
    """The user section as Markdown: ``user`` (docs/speed.md: a row per case, the default
    torch-bf16 command against 'before' with the issue's goal, then the other variants; CBM3D
    below) and ``user_compact`` (README: the default command's time and peak memory per case, and
    the s/MP of fp32 and ONNX Runtime)."""
    by = {(r['case'], r['variant']): r for r in rows}
    cases = [name for name, _, _ in USER_CASES if (name, 'torch-bf16') in by]
    head = ['input', 'default (bf16)', 'before', 'ratio', 'goal'] + [title for _, title in USER_OTHER_VARIANTS]
    full = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    compact_variants = [(v, title) for v, title in USER_OTHER_VARIANTS if v != 'glibc']
    compact_head = ['input', 'default (bf16)', *[title for _, title in compact_variants], 'peak memory (default)']
    compact = ['| ' + ' | '.join(compact_head) + ' |', '|' + '---|' * len(compact_head)]
    for case in cases:
        ours = by[(case, 'torch-bf16')]
        before = by.get((case, 'baseline'))
        before_s, before_cell = ((before['seconds'], _user_cell(before)) if before
                                 else USER_BEFORE_ISSUE.get(case, (None, '')))
        ratio = ours['seconds'] / before_s if before_s else None
        goal = USER_GOALS.get(case)
        goal_cell, bold = '', False
        if goal and ratio is not None:
            text, limit, peak_limit = goal
            met = ratio <= limit and (peak_limit is None or ours['peak_mb'] <= peak_limit)
            memory = f', ≤ {peak_limit / 1024:.0f} GB' if peak_limit else ''
            goal_cell, bold = f"≤ {text}{memory} {'✓' if met else '✗'}", True
        ratio_cell = '' if ratio is None else (f'**{ratio:.2f}**' if bold else f'{ratio:.2f}')
        others = [_user_cell(by[(case, v)]) if (case, v) in by else '' for v, _ in USER_OTHER_VARIANTS]
        full.append('| ' + ' | '.join([USER_LABELS[case], _user_cell(ours, bold), before_cell, ratio_cell,
                                       goal_cell, *others]) + ' |')
        other_rates = [f"{by[(case, v)]['s_per_mp']:.1f} s/MP" if (case, v) in by else '' for v, _ in compact_variants]
        compact.append('| ' + ' | '.join([USER_LABELS[case], f"{_seconds(ours['seconds'])} ({ours['s_per_mp']:.1f} s/MP)",
                                          *other_rates, f"{ours['peak_mb'] / 1024:.1f} GB"]) + ' |')
    cbm3d = by.get(('0.5 MP', 'CBM3D'))
    if cbm3d:
        full += ['', f"CBM3D (PyPI `bm3d`) on the 0.5 MP photo: {cbm3d['seconds']:.1f} s "
                     f"({cbm3d['s_per_mp']:.0f} s/MP), {cbm3d['peak_mb']:.0f} MB."]
        compact.append('| ' + ' | '.join(['CBM3D, one 0.5 MP photo', f"{_seconds(cbm3d['seconds'])} ({cbm3d['s_per_mp']:.0f} s/MP)",
                                          *[''] * len(compact_variants), f"{cbm3d['peak_mb'] / 1024:.1f} GB"]) + ' |')
    return {'user': '\n'.join(full), 'user_compact': '\n'.join(compact)}


PEERS_SET, PEERS_SIGMA = 'BSD68', 25


def peer_networks() -> Dict[str, nn.Module]:
    """The gray denoisers of the quality/speed picture at random initialisation, in eval mode:
    vheatir.archs.peers_arch's DnCNN, FFDNet and DRUNet, and BasicSR's SwinIR with the SwinIR
    paper's denoising settings (6 groups of 6 blocks, width 180, window 8)."""
    from vheatir.archs.peers_arch import DnCNN, DRUNet, FFDNet
    torch.manual_seed(0)
    nets = {'DnCNN': DnCNN(), 'FFDNet': FFDNet(), 'DRUNet': DRUNet(),
            'SwinIR': SwinIR(upscale=1, in_chans=1, img_size=128, window_size=8, img_range=1.0, depths=[6] * 6,
                             embed_dim=180, num_heads=[6] * 6, mlp_ratio=2, upsampler='', resi_connection='1conv')}
    return {name: net.eval() for name, net in nets.items()}


def peer_psnr() -> Dict[str, Tuple[float, str]]:
    """BSD68 sigma 25 PSNR per model and where it comes from: docs/published.json for the peers,
    this project's benchmark JSONs (docs/results) for the shipped gray denoiser (named by its size,
    e.g. 'vHeatIR-M') and BM3D."""
    import glob
    from results_tables import measured, shipped_label
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, 'docs', 'published.json')) as f:
        published = json.load(f)['denoise_gray']
    out = {name: (cells[PEERS_SET][str(PEERS_SIGMA)], 'published') for name, cells in published.items()
           if name != 'BM3D' and str(PEERS_SIGMA) in cells.get(PEERS_SET, {})}
    files = sorted(glob.glob(os.path.join(root, 'docs', 'results', '*.json')))
    scores = measured(files, root)[0].get('denoise_gray', {})
    ours = shipped_label('denoise_gray')
    for name, label in ((ours, ours), ('BM3D', 'BM3D (ours)')):
        cell = scores.get(label, {}).get((PEERS_SET, PEERS_SIGMA))
        if cell is None:  # e.g. between an export and its benchmark
            raise SystemExit(f'error: docs/results has no {PEERS_SET} sigma {PEERS_SIGMA} result for {label}; '
                             f'record one with scripts/benchmark.py --task denoise --sets {PEERS_SET} '
                             f'--sigmas {PEERS_SIGMA} --record (--model bm3d for BM3D)')
        out[name] = (cell['psnr'], 'measured')
    return out


def refresh_peer_psnr(rows: List[dict], psnr: Dict[str, Tuple[float, str]]) -> List[dict]:
    """``rows`` (peers section) with each model's PSNR and its source taken from ``psnr``
    (:func:`peer_psnr`): the timings belong to the architecture, the PSNR to the weights shipped
    now, so a new export updates the table without timing again."""
    return [{**r, 'psnr': psnr[r['model']][0], 'psnr_source': psnr[r['model']][1]} if r['model'] in psnr else r
            for r in rows]


def peers_block(rows: List[dict]) -> str:
    """The peers section as Markdown (docs/speed.md's ``speed:peers``): one row per model with its
    fp32 and bf16 s/MP, our model's ONNX Runtime in a row of its own and BM3D after it, the
    peers by PSNR."""
    by = {(r['model'], r['engine']): r for r in rows}
    models = list(dict.fromkeys(r['model'] for r in rows))
    psnr = {r['model']: r['psnr'] for r in rows}
    ours = [m for m in models if m.startswith('vHeatIR')]
    others = sorted((m for m in models if m not in ours and m != 'BM3D'), key=psnr.get)
    lines = ['| model | parameters | fp32, s/MP | bf16, s/MP | BSD68 σ25 (dB) |', '|---|---|---|---|---|']

    def line(label: str, fp32: Optional[dict], bf16: Optional[dict]) -> None:
        first = fp32 or bf16
        params = f"{first['params'] / 1e6:.1f}M" if isinstance(first['params'], int) and first['params'] >= 1e6 \
            else f"{first['params'] / 1e3:.0f}k" if isinstance(first['params'], int) else ''
        cell = lambda r: '' if r is None else f"{r['s_per_mp']:.{2 if r['s_per_mp'] < 10 else 3}g}"  # noqa: E731
        lines.append(f"| {label} | {params} | {cell(fp32)} | {cell(bf16)} | "
                     f"{first['psnr']:.2f} ({first['psnr_source']}) |")

    for m in ours:
        line(f'{m} (shipped)', by.get((m, 'torch fp32')), by.get((m, 'torch bf16')))
        if (m, 'onnxruntime') in by:
            line(f'{m}, ONNX Runtime', by[(m, 'onnxruntime')], None)
    if ('BM3D', 'PyPI bm3d') in by:
        line('BM3D (PyPI)', by[('BM3D', 'PyPI bm3d')], None)
    for m in others:
        line(m, by.get((m, 'torch fp32')), by.get((m, 'torch bf16')))
    return '\n'.join(lines)


def section_peers(height: int, width: int, repeats: int) -> List[dict]:
    """Seconds per megapixel of gray denoising of one height x width image (default: BSD68's
    size) on this CPU: the shipped gray denoiser (named by its size) in torch fp32 and bf16 and in ONNX
    Runtime, the peer architectures at random initialisation in fp32 and bf16 (autocast), and
    PyPI's BM3D. Network forwards only (no start-up), run in turn ``repeats`` times; medians.
    The PSNR is added by :func:`refresh_peer_psnr` when the results are written."""
    import bm3d
    from vheatir.onnx_engine import load_onnx_net
    from vheatir.weights import default_weights, load_network
    from results_tables import shipped_label
    weights = default_weights('denoise', 'gray')
    ours = load_network(weights)[0].eval()
    name_ours = shipped_label('denoise_gray')
    engines = {name_ours: {'torch fp32': (ours, False), 'torch bf16': (ours, True),
                           'onnxruntime': (load_onnx_net(weights), False)}}
    for name, net in peer_networks().items():
        engines[name] = {'torch fp32': (net, False), 'torch bf16': (net, True)}
    x = torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(0))
    cond = torch.full((1, 1), PEERS_SIGMA / 255)

    def run(net, amp: bool) -> Callable[[], None]:
        def f():
            with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
                forward_padded(net, x, cond) if isinstance(net, nn.Module) else net(x, cond)
        return f

    mp = height * width / 1e6
    noisy = x[0, 0].numpy()
    calls = [(name, engine, run(net, amp)) for name, by_engine in engines.items()
             for engine, (net, amp) in by_engine.items()]
    calls.append(('BM3D', 'PyPI bm3d', lambda: bm3d.bm3d(noisy, PEERS_SIGMA / 255)))
    times = alternate([c[2] for c in calls], repeats)
    rows = []
    for (name, engine, _), seconds in zip(calls, times):
        net = engines[name]['torch fp32'][0] if name in engines else None
        rows.append(dict(model=name, engine=engine, params=count_params(net) if net is not None else '-',
                         weights='shipped' if name == name_ours else 'random init' if net is not None else '-',
                         seconds=seconds, s_per_mp=seconds / mp, image=f'{width}x{height}'))
        print(f'peers {name} {engine}: {seconds:.2f} s, {seconds / mp:.1f} s/MP', flush=True)
    return rows


MALLOC_CHILD = r"""
import resource, statistics, sys, time
root, model, setting, size, repeats, threads = sys.argv[1:3] + [sys.argv[3]] + [int(v) for v in sys.argv[4:]]
sys.path[:0] = [root, root + '/scripts']
import torch
import bench_speed
from vheatir.allocator import reuse_freed_memory
if setting == 'reuse':
    assert reuse_freed_memory()
torch.set_num_threads(threads)
torch.manual_seed(0)
net = bench_speed.vheatir_s() if model == 'vheatir' else bench_speed.swinir_like()
x, c = torch.rand(1, 3, size, size), torch.full((1, 1), 0.1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
with torch.inference_mode():
    for _ in range(repeats + 1):
        start = time.perf_counter()
        net(x, c) if model == 'vheatir' else net(x)
        times.append(time.perf_counter() - start)
print(statistics.median(times[1:]), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""
MALLOC_SETTINGS = ('glibc', 'reuse')


def section_malloc(sizes: List[int], repeats: int) -> List[dict]:
    """Colour inference of vHeatIR-S and SwinIR, float32, under two malloc settings, each in a
    fresh process: mmap threshold at glibc's 32 MiB ceiling, and vheatir.allocator's
    reuse_freed_memory (what inference.py, benchmark.py and train.py use). Median seconds of
    ``repeats`` forwards after one warm-up; peak RSS growth over them, also in float32 feature
    maps of 48 channels (the unit of vheatir.api.PEAK_FEATURE_MAPS)."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    for size in sizes:
        fmap = size * size * WIDTH * 4
        for setting in MALLOC_SETTINGS:
            got = {}
            for model in ('vheatir', 'swinir'):
                out = subprocess.run([sys.executable, '-c', MALLOC_CHILD, root, model, setting, str(size),
                                      str(repeats), str(torch.get_num_threads())],
                                     capture_output=True, text=True, check=True)
                got[model] = [float(v) for v in out.stdout.split()[-2:]]
            (th, ph), (ts, ps) = got['vheatir'], got['swinir']
            row = dict(size=size, malloc=setting, vheatir_s=th, swinir_s=ts, speedup=ts / th, vheatir_mb=ph / 2**20,
                       swinir_mb=ps / 2**20, vheatir_maps=ph / fmap, swinir_maps=ps / fmap)
            rows.append(row)
            print(f"malloc {size}² {setting}: vHeatIR-S {th:.2f} s, SwinIR {ts:.2f} s (x{row['speedup']:.2f}); peak "
                  f"{row['vheatir_mb']:.0f} vs {row['swinir_mb']:.0f} MB (vHeatIR-S {row['vheatir_maps']:.1f} "
                  f"feature maps)", flush=True)
    return rows


def table(rows: List[dict], cols: List[str]) -> str:
    fmt = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)  # noqa: E731
    out = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    out += ['| ' + ' | '.join(fmt(r[c]) for c in cols) + ' |' for r in rows]
    return '\n'.join(out)


def plot(results: Dict[str, List[dict]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, a, b, label_a, label_b, section in (('heat_s', 'heat_s', 'swin_s', 'HeatBlock', 'Swin block', 'op'),
                                                 ('vheatir_s', 'vheatir_s', 'swinir_s', 'vHeatIR-S', 'SwinIR', 'net')):
        for dtype in ('fp32', 'bf16'):
            rows = [r for r in results.get(section, []) if r['dtype'] == dtype and r.get('mode', 'fwd') ==
                    ('fwd+bwd' if section == 'op' else 'fwd')]
            if not rows:
                continue
            px = [r['size'] ** 2 for r in rows]
            ls = '-' if dtype == 'fp32' else '--'
            ma, mb = ('heat_mb', 'swin_mb') if section == 'op' else ('vheatir_mb', 'swinir_mb')
            axes[0].loglog(px, [r[a] for r in rows], 'o' + ls, label=f'{label_a} {section} {dtype}')
            axes[0].loglog(px, [r[b] for r in rows], 's' + ls, label=f'{label_b} {section} {dtype}')
            axes[1].loglog(px, [max(r[ma], 1e-3) for r in rows], 'o' + ls, label=f'{label_a} {section} {dtype}')
            axes[1].loglog(px, [max(r[mb], 1e-3) for r in rows], 's' + ls, label=f'{label_b} {section} {dtype}')
    axes[0].set(xlabel='pixels', ylabel='seconds', title='time (op: fwd+bwd, net: inference)')
    axes[1].set(xlabel='pixels', ylabel='peak RSS growth (MB)', title='peak memory')
    for ax in axes:
        ax.grid(True, which='both', alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def merge_results(old: dict, results: Dict[str, List[dict]], env: dict) -> dict:
    """The JSON to write: ``old`` with the sections in ``results`` replaced and ``env`` beside them.

    Sections not run keep their earlier rows beside the env that measured them. The user section
    is merged by (case, variant): rows not run again are kept, and every user row carries the
    command and date that measured it, since one table gathers several runs.
    """
    merged = dict(old)
    envs = dict(merged.get('env_by_section', {}))
    for name, rows in results.items():
        if name == 'user':
            rows = [{**r, 'command': env['command'], 'date': env['date']} for r in rows]
            ran = {(r['case'], r['variant']) for r in rows}
            rows = [r for r in merged.get('user', []) if (r['case'], r['variant']) not in ran] + rows
        merged[name] = rows
        envs[name] = env
    merged['env_by_section'] = envs
    merged.pop('env', None)
    return merged


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sections', default='dct,op,net,step,flops,flop_ratio')
    p.add_argument('--sizes', default='64,128,256,512,1024', help='operator sizes (fwd and fwd+bwd)')
    p.add_argument('--fwd-only-sizes', default='2048', help='operator sizes timed forward only')
    p.add_argument('--net-sizes', default='256,512,1024')
    p.add_argument('--flops-sizes', default='256,512')
    p.add_argument('--malloc-sizes', default='256,512,1024')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--tile-image', default='768,1024', help='tile section: photo height,width')
    p.add_argument('--tile-sizes', default='192,256,320,384,512', help='tile section: tile sides (and whole)')
    p.add_argument('--tile-dtypes', default='fp32,bf16')
    p.add_argument('--peers-image', default='321,481', help="peers section: gray image height,width (BSD68's size)")
    p.add_argument('--user-variants', default='torch-fp32,torch-bf16,onnxruntime,cbm3d',
                   help="user section: torch-fp32, torch-bf16, onnxruntime, baseline (with --user-baseline), cbm3d")
    p.add_argument('--user-cases', default=';'.join(c[0] for c in USER_CASES), help='user section cases, ;-separated')
    p.add_argument('--user-repeats', type=int, default=2)
    p.add_argument('--user-baseline', default='', help="user section, variant 'baseline': a checkout to compare "
                   "with, e.g. `git worktree add /tmp/base <rev>`")
    p.add_argument('--out', default='docs/bench_speed.json')
    p.add_argument('--readme', default=None, help="rewrite the README's speed:user_compact block from --out")
    p.add_argument('--docs', default=None, help="rewrite docs/speed.md's speed:user and speed:peers blocks from --out")
    p.add_argument('--plot', default='docs/bench_speed.png')
    args = p.parse_args()
    ints = lambda s: [int(v) for v in s.split(',') if v]  # noqa: E731
    sections = args.sections.split(',')
    results: Dict[str, List[dict]] = {}
    if 'dct' in sections:
        # Training batches, single images from 32 px to 1024 px, and a BSD68-sized photo.
        shapes = ([(b, 48, 48, 48) for b in (1, 2, 4, 8, 16)] + [(16, 64, 64, 48)] +
                  [(1, n, n, 48) for n in (32, 64, 80, 96, 128, 192, 256, 384, 512, 1024)] + [(1, 321, 481, 48)])
        results['dct'] = section_dct(shapes, args.repeats)
    if 'op' in sections:
        results['op'] = section_op(ints(args.sizes), ints(args.fwd_only_sizes), args.repeats)
    if 'net' in sections:
        results['net'] = section_net(ints(args.net_sizes), args.repeats)
    if 'step' in sections:
        results['step'] = section_step(args.repeats)
    if 'flops' in sections:
        results['flops'] = section_flops(ints(args.flops_sizes), args.repeats)
    if 'flop_ratio' in sections:
        results['flop_ratio'] = section_flop_ratio(ints(args.sizes), ints(args.flops_sizes))

    if 'malloc' in sections:
        results['malloc'] = section_malloc(ints(args.malloc_sizes), min(args.repeats, 3))
    if 'tile' in sections:
        h, w = ints(args.tile_image)
        results['tile'] = section_tile(h, w, ints(args.tile_sizes), args.tile_dtypes.split(','))
    if 'peers' in sections:
        h, w = ints(args.peers_image)
        results['peers'] = section_peers(h, w, args.repeats)
    if 'user' in sections:
        results['user'] = section_user(args.user_variants.split(','), args.user_cases.split(';'), args.user_repeats,
                                       args.user_baseline)

    cols = {'tile': ['image', 'dtype', 'tile', 'seconds', 's_per_mp', 'vs_whole'],
            'peers': ['model', 'engine', 'params', 'weights', 's_per_mp', 'psnr', 'psnr_source'],
            'user': ['case', 'variant', 'threads', 'megapixels', 'seconds', 's_per_mp', 'peak_mb'],
            'dct': ['batch', 'h', 'w', 'c', *[f'{k}_s' for k in DCT_PATHS], 'auto', 'auto_vs_best'],
            'op': ['size', 'mode', 'dtype', 'heat_s', 'swin_s', 'speedup', 'heat_mb', 'swin_mb', 'mem_ratio'],
            'malloc': ['size', 'malloc', 'vheatir_s', 'swinir_s', 'speedup', 'vheatir_mb', 'swinir_mb',
                       'vheatir_maps'],
            'net': ['size', 'dtype', 'vheatir_s', 'swinir_s', 'speedup', 'vheatir_mb', 'swinir_mb'],
            'step': ['patch', 'batch', 'dtype', 'threads', *[f'{k}_patches_per_s' for k in STEP_NAMES], 'auto'],
            'flop_ratio': ['level', 'size', 'heat_gflop', 'swin_gflop', 'flop_ratio'],
            'flops': ['size', 'dtype', 'gflop', 'seconds', 'gflops_per_s', 'matmul_peak', 'fraction_of_peak']}
    env = dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(),
               command='python ' + ' '.join(sys.argv), date=time.strftime('%Y-%m-%d %H:%M'))
    merged = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            merged = json.load(f)
    merged = merge_results(merged, results, env)
    if merged.get('peers'):
        merged['peers'] = refresh_peer_psnr(merged['peers'], peer_psnr())
    for name in results:
        print(f'\n### {name}\n\n' + table(merged[name], cols[name]))
    data = json.dumps(merged, indent=1).encode()
    atomic_write(args.out, lambda f: f.write(data))
    if args.readme or args.docs:
        blocks = user_blocks(merged.get('user', []))
        if merged.get('peers'):
            blocks['peers'] = peers_block(merged['peers'])
        targets = [(path, {name: blocks[name] for name in names if name in blocks})
                   for path, names in ((args.docs, ('user', 'peers')), (args.readme, ('user_compact',))) if path]
        try:
            print('\n'.join(rewrite_files(targets, 'speed')))
        except ValueError as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
    if 'op' in results or 'net' in results:
        plot(merged, args.plot)
        print(f'\nwrote {args.out} and {args.plot}')
    else:
        print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
