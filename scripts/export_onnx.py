"""Export vHeatIR weights to ONNX, with dynamic batch, height and width, checked against PyTorch.

    python scripts/export_onnx.py --task denoise --color gray --out vheatir_denoise_gray.onnx
    python scripts/export_onnx.py --weights weights/vheatir_M_jpeg_color.pth --out jpeg_color.onnx
    python scripts/export_onnx.py --task denoise --color color --sigma 25 --out denoise_color_s25.onnx

The graph takes 'image' (B, C, H, W) float32 in [0, 1] (RGB for colour models) and 'cond' (B, 1) =
sigma/255 (denoise) or quality/100 (jpeg), and returns 'restored' (B, C, H, W). With --sigma or
--quality that level is baked in and 'image' is the only input, as chaiNNer and most ONNX image
tools expect. Before the file is written (atomically), ONNX Runtime runs it at a size other than the
export's and the largest difference to PyTorch is printed; above 1e-4 nothing is written. Needs the
packages onnx, onnxscript and onnxruntime; an S model takes about half a minute on one core.
"""
import argparse
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def error(message: str) -> int:
    print(f'error: {message}', file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--weights', default=None,
                        help='vHeatIR weights file (default: the shipped one for --task and --color)')
    parser.add_argument('--task', choices=('denoise', 'jpeg'), default=None,
                        help='with --color: export the shipped weights')
    parser.add_argument('--color', choices=('gray', 'color'), default=None)
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--opset', type=int, default=None, help="ONNX opset, 18 or later (default: the exporter's, 20)")
    level = parser.add_mutually_exclusive_group()
    level.add_argument('--sigma', type=float, default=None,
                       help='denoise: bake this noise level (0-255 scale) into the graph; no cond input')
    level.add_argument('--quality', type=int, default=None,
                       help='jpeg: bake this JPEG quality (1..100) into the graph; no cond input')
    args = parser.parse_args()
    if args.weights is None and (args.task is None or args.color is None):
        parser.error('give --weights FILE, or --task and --color for the shipped weights')
    if args.weights is not None and (args.task or args.color):
        parser.error('--task and --color choose shipped weights; leave them out with --weights')
    if args.sigma is not None and not args.sigma >= 0:
        parser.error(f'--sigma must be >= 0, got {args.sigma}')
    if args.quality is not None and not 1 <= args.quality <= 100:
        parser.error(f'--quality must be in 1..100, got {args.quality}')
    if args.weights is not None and not os.path.isfile(args.weights):  # before the slow imports
        return error(f'weights file not found: {args.weights}')

    import vheatir  # noqa: F401  (torchvision alias before basicsr)
    from vheatir import onnx_engine
    from vheatir.weights import default_weights, read_weights

    try:
        given = args.sigma if args.sigma is not None else args.quality
        path = args.weights or default_weights(args.task, args.color, level=given)
        task = read_weights(path)['task']
        if (args.quality if task == 'denoise' else args.sigma) is not None:
            option = '--sigma' if task == 'denoise' else '--quality'
            raise ValueError(f'{path} is a {task} model: its level is set with {option}')
        fixed_cond = None if given is None else given / (255.0 if task == 'denoise' else 100.0)
        onnx_engine.require('onnx', 'onnxscript', 'onnxruntime')
        diff = onnx_engine.export_weights_onnx(path, args.out, args.opset, fixed_cond)
    except (ImportError, OSError, ValueError) as err:
        return error(str(err).splitlines()[0])

    import onnx

    model = onnx.load(args.out)
    inputs = ', '.join(i.name for i in model.graph.input)
    opset = next(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))
    _, h, w = onnx_engine.CHECK_SIZE
    print(f'wrote {args.out} from {path}: opset {opset}, inputs {inputs}, output {onnx_engine.OUTPUT}')
    print(f'max |onnxruntime - torch| = {diff:.2g} at {h} x {w} px')
    return 0


if __name__ == '__main__':
    sys.exit(main())
