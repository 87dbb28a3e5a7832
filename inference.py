"""Restore images with vHeatIR: Gaussian denoising or JPEG deblocking, gray or colour.

    python inference.py --task denoise --input examples/gray/noisy         # sigma estimated per image
    python inference.py --task jpeg --input examples/gray/jpeg --gt examples/gray/clean
    python inference.py --task denoise --input photo.png --sigma 25 --output out/

Inputs: an image file, or a folder of PNG/JPEG/BMP/TIFF/WebP images (--recursive walks
subfolders and mirrors them in the output; other files are ignored and listed once). 8- and
16-bit, gray, RGB, RGBA (alpha kept as is) and palette images. Each result is written as
<output>/<name>.png, 16-bit when the input was, turned upright by the input's EXIF orientation
and carrying its ICC colour profile.

Weights: by default the shipped weights in weights/manifest.json for the task and each image's
colour mode (gray, or colour; a colour image with three equal channels counts as gray), or
the specialist for one level where one ships and the level is known exactly (--sigma N,
--quality Q, or the quality read from a JPEG file's quantisation table), or the camera-noise
denoiser where one ships and the estimated noise reads as camera noise. --weights FILE
replaces them: give it once (used for every image; an image whose colour mode that file cannot
handle is skipped) or twice, a gray and a colour file, to cover both.

Engine: --engine onnxruntime runs the weights' ONNX export with ONNX Runtime on the CPU (packages
onnxruntime, onnx, onnxscript), with the same tiling and self-ensemble; each weights file is exported
once, on first use, into ~/.cache/vheatir/onnx (or $VHEATIR_ONNX_CACHE). --amp needs --engine torch.

Exit status: 0 when every image was restored, 1 on an error or when images were skipped
(unreadable, undecodable, failed), 2 for invalid arguments.
"""
import argparse
import math
import os
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.abspath(__file__))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# ----------------------------------------------------------------- arguments
def _sigma(text: str):
    if text == 'auto':
        return text
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (0-255 scale) or 'auto', got {text!r}")
    return value


def _quality(text: str):
    if text == 'auto':
        return text
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"expected an integer in 1..100 or 'auto', got {text!r}")
    return int(text)


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f'expected an integer >= {minimum}, got {text!r}')
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', required=True, choices=('denoise', 'jpeg'))
    parser.add_argument('--input', required=True, help='an image file or a folder of images')
    parser.add_argument('--output', default=None, help='output folder (default results/<task>)')
    parser.add_argument('--sigma', type=_sigma, default='auto',
                        help="denoise: noise std on the 0-255 scale, or 'auto' (default): estimated per image")
    parser.add_argument('--quality', type=_quality, default='auto',
                        help="jpeg: quality 1..100, or 'auto' (default): read from JPEG files, else estimated")
    parser.add_argument('--tile', type=_int_at_least(8), default=None,
                        help='tile side in px (default: automatic, see docs/usage.md)')
    parser.add_argument('--tile-overlap', type=_int_at_least(0), default=32, help='tile overlap in px (default 32)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--engine', choices=('torch', 'onnxruntime'), default='torch',
                        help='run the network with PyTorch (default) or its ONNX export with ONNX Runtime (CPU)')
    parser.add_argument('--amp', choices=('auto', 'fp32', 'bf16', 'fp16'), default='auto',
                        help='dtype of the network: auto (default) = bf16 on CPUs with native bf16 kernels '
                             '(as accurate, faster), else fp32; an image that comes out non-finite is redone in fp32')
    parser.add_argument('--self-ensemble', action='store_true',
                        help='average over the 8 flips and rotations of each image (8x slower, slightly better)')
    parser.add_argument('--weights', action='append', metavar='FILE',
                        help='weights file instead of the shipped ones; give twice for a gray and a colour file')
    parser.add_argument('--recursive', action='store_true', help='also restore images in subfolders')
    parser.add_argument('--gt', metavar='DIR', default=None,
                        help='folder of ground truths (matched by name): report PSNR/SSIM on uint8')
    return parser


# --------------------------------------------------------------------- files
def collect_files(path: str, recursive: bool, skip_dir: str):
    """Non-hidden files under folder ``path`` (sorted), walking subfolders when ``recursive``.

    ``skip_dir`` (the output folder) is not entered, so results never become inputs.
    """
    files = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.')
                         and os.path.realpath(os.path.join(folder, d)) != skip_dir) if recursive else []
        files += [os.path.join(folder, n) for n in sorted(names) if not n.startswith('.')]
    return files


def index_ground_truth(gt_dir: str):
    """Map 'sub/name' (relative path without extension) and bare 'name' to ground-truth files."""
    from vheatir.imageio import is_image_name

    by_rel, by_stem = {}, {}
    for path in collect_files(gt_dir, recursive=True, skip_dir=''):
        if is_image_name(path):
            rel = os.path.splitext(os.path.relpath(path, gt_dir))[0].replace(os.sep, '/')
            by_rel[rel] = path
            by_stem.setdefault(os.path.basename(rel), path)
    return by_rel, by_stem


def psnr_ssim(output, gt_path: str):
    """PSNR (dB) and SSIM of ``output`` against the ground truth file, on uint8, no border crop.

    The benchmark protocol: alpha dropped, 16-bit reduced to 8-bit; a 3-channel image with equal
    channels is compared as gray against a gray ground truth.
    """
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from vheatir.imageio import read_image, to_uint8

    def planes(img):
        img = to_uint8(img)
        img = img[..., :3] if img.ndim == 3 and img.shape[2] == 4 else img
        return img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img

    out, gt = planes(output), planes(read_image(gt_path))
    if out.ndim != gt.ndim:  # gray vs colour with equal channels
        out, gt = (out[..., 0], gt) if out.ndim == 3 else (out, gt[..., 0])
    if out.shape != gt.shape:
        raise ValueError(f'ground truth {gt_path} has shape {gt.shape}, the result {out.shape}')
    return calculate_psnr(out, gt, crop_border=0), calculate_ssim(out, gt, crop_border=0)


# ---------------------------------------------------------------------- main
def error(message: str) -> int:
    print(f'error: {message}', file=sys.stderr)
    return 1


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tile is not None and args.tile_overlap >= args.tile:
        parser.error(f'--tile-overlap ({args.tile_overlap}) must be smaller than --tile ({args.tile})')
    if args.engine == 'onnxruntime' and args.amp not in ('auto', 'fp32'):
        parser.error('--amp needs --engine torch (ONNX Runtime runs the float32 graph)')
    if args.engine == 'onnxruntime' and args.device == 'cuda':
        parser.error('--engine onnxruntime runs on the CPU; use --device cpu or auto')

    # Everything that can be checked without torch is checked first, so mistakes fail fast.
    if not os.path.exists(args.input):
        return error(f'input not found: {args.input}')
    for path in args.weights or []:
        if not os.path.isfile(path):
            return error(f'weights file not found: {path}')
    if args.weights and len(args.weights) > 2:
        return error('--weights can be given at most twice (a gray and a colour file)')
    if args.gt is not None and not os.path.isdir(args.gt):
        return error(f'ground-truth folder not found: {args.gt}')

    from vheatir.imageio import (IMAGE_EXTENSIONS, JPEG_EXTENSIONS, apply_orientation, is_image_name,
                                 read_image, read_metadata, write_png)

    out_dir = os.path.abspath(args.output or os.path.join('results', args.task))
    if os.path.isdir(args.input):
        root = args.input
        files = collect_files(root, args.recursive, os.path.realpath(out_dir))
    else:
        root, files = os.path.dirname(args.input) or '.', [args.input]
    skipped = []  # (file, reason): images that could not be restored; they make the exit status 1
    # A file named on the command line is tried whatever its extension; in folders only image types,
    # the rest (notes, sidecar files) is ignored without failing the run.
    images = [f for f in files if is_image_name(f) or f == args.input]
    ignored = [f for f in files if f not in images]
    if not images:
        where = 'or its subfolders ' if args.recursive else ''
        return error(f'no images found in {args.input} {where}(supported: {", ".join(IMAGE_EXTENSIONS)})')

    # Output paths: <out>/<subfolder>/<stem>.png. Never write over an input; two inputs that
    # would share an output name (a.jpg and a.png) keep the first, skip the second.
    inputs = {os.path.realpath(f) for f in files}
    plan, taken = [], {}
    for f in images:
        rel = os.path.relpath(f, root)
        out = os.path.join(out_dir, os.path.splitext(rel)[0] + '.png')
        if os.path.realpath(out) in inputs:
            return error(f'output {out} would overwrite the input file {f}; choose another --output')
        if out in taken:
            skipped.append((f, f'its output {out} is already taken by {taken[out]}'))
            continue
        taken[out] = f
        plan.append((f, out, os.path.splitext(rel)[0].replace(os.sep, '/')))

    import numpy as np
    from tqdm import tqdm

    from vheatir import api, onnx_engine
    from vheatir.allocator import reuse_freed_memory

    reuse_freed_memory()

    def note(message: str) -> None:
        tqdm.write(message, file=sys.stdout)

    def prepare_engine(path: str) -> None:
        """Load the ONNX Runtime engine of weights ``path`` now, saying so when it is exported first."""
        if args.engine == 'onnxruntime':
            onnx_file = onnx_engine.onnx_file_for(path)
            if not os.path.isfile(onnx_file):
                note(f'exporting {path} to ONNX (once per weights file, up to a minute): {onnx_file}')
            onnx_engine.load_onnx_net(path)

    try:
        if args.engine == 'onnxruntime':
            onnx_engine.require('onnxruntime', 'onnx', 'onnxscript')
        device = api.engine_device(args.engine, args.device)
        for path in args.weights or []:
            info = api.load_model(path, device)[1]
            if info['task'] != args.task:
                return error(f'weights {path} are for {info["task"]}, not {args.task}')
            print(f'weights: {path} ({info["task"]}, {info["color"]})')
            prepare_engine(path)
    except (ImportError, OSError, ValueError) as err:
        return error(str(err))
    gt_index = index_ground_truth(args.gt) if args.gt else None

    def skip(path: str, reason: str) -> None:
        skipped.append((path, reason))
        tqdm.write(f'skipped {path}: {reason}', file=sys.stderr)

    if ignored:
        shown = ', '.join(os.path.relpath(f, root) for f in ignored[:5]) + (', ...' if len(ignored) > 5 else '')
        note(f'ignored {len(ignored)} file(s) that are not images by extension: {shown}')
    for f, reason in skipped:
        tqdm.write(f'skipped {f}: {reason}', file=sys.stderr)
    start, done, scores = time.perf_counter(), 0, []
    shipped = set()   # shipped weights files announced (and loaded into the engine) so far
    for path, out, key in tqdm(plan, desc='restoring', unit='img', disable=None):
        try:
            # Stored pixels (a JPEG's 8x8 grid at the corner, as in training); the result is turned upright.
            img = read_image(path, upright=False)
            mode = api.color_mode(img)
        except ValueError as err:
            skip(path, str(err))
            continue
        sigma, quality, noise = args.sigma, args.quality, 'white'
        level = sigma if args.task == 'denoise' else quality  # None unless known exactly
        if args.task == 'denoise' and sigma == 'auto':
            (sigma, noise), level = api.estimate_noise(img), None
            note(f'{path}: sigma {sigma:.1f} (estimated{", camera noise" if noise == "camera" else ""})')
        if args.task == 'jpeg' and quality == 'auto':
            is_jpeg = os.path.splitext(path)[1].lower() in JPEG_EXTENSIONS
            quality, how = (api.estimate_jpeg_quality(path) if is_jpeg else None), 'from its quantisation table'
            level = quality
            if quality is None:
                quality, how = api.estimate_quality(img), 'estimated from the pixels'
            if quality is not None:   # else restore() finds no grid either and returns the image as it is
                note(f'{path}: quality {quality} ({how})')

        try:
            weights_path = api.select_weights(img, args.task, args.weights, device, level=level, noise=noise)
        except (OSError, ValueError) as err:
            if not args.weights:   # the shipped weights are missing or broken: no image can run
                return error(str(err))
            skip(path, str(err))
            continue
        if not args.weights and weights_path not in shipped:
            shipped.add(weights_path)
            note(f'weights: {weights_path} (shipped, {args.task}, {mode})')
            try:
                prepare_engine(weights_path)
            except (OSError, ValueError) as err:
                return error(str(err))

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                result = api.restore(img, task=args.task, sigma=sigma, quality=quality, weights=weights_path,
                                     device=device, tile=args.tile, tile_overlap=args.tile_overlap, amp=args.amp,
                                     self_ensemble=args.self_ensemble, engine=args.engine)
            for warning in caught:
                note(f'{path}: {warning.message}')
            orientation, icc_profile = read_metadata(path)   # one header read for both
            result = apply_orientation(result, orientation)
            write_png(out, result, icc_profile)
        except (ValueError, RuntimeError, MemoryError, OSError) as err:
            skip(path, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
            continue
        done += 1

        if gt_index is not None:
            gt_path = gt_index[0].get(key) or gt_index[1].get(os.path.basename(key))
            if gt_path is None:
                note(f'{path}: no ground truth named {os.path.basename(key)}.* in {args.gt}')
                continue
            try:
                psnr, ssim = psnr_ssim(result, gt_path)
            except ValueError as err:
                note(f'{path}: no PSNR/SSIM: {err}')
                continue
            scores.append((psnr, ssim))
            note(f'{path}: PSNR {psnr:.2f} dB  SSIM {ssim:.4f}')

    seconds = time.perf_counter() - start
    print(f'restored {done} of {len(plan)} image(s) in {seconds:.1f} s -> {out_dir}')
    if scores:
        psnr, ssim = np.mean(scores, axis=0)
        print(f'mean over {len(scores)} image(s): PSNR {psnr:.2f} dB  SSIM {ssim:.4f}')
    if skipped:
        print(f'skipped {len(skipped)} file(s):')
        for path, reason in skipped:
            print(f'  {path}: {reason}')
        return 1
    return 0


if __name__ == '__main__':
    from vheatir.allocator import reexec_under_jemalloc

    reexec_under_jemalloc()   # where installed; VHEATIR_ALLOCATOR=system opts out (vheatir/allocator.py)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(error('interrupted'))
