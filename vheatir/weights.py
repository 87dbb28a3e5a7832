"""The shipped-weights format of vHeatIR, in one place.

A weights file is a ``torch.save``'d plain dict (loadable with ``weights_only=True``)::

    {'format': 'vheatir-weights-v1',
     'task': 'denoise' | 'jpeg',
     'color': 'gray' | 'color',
     'arch': name in BasicSR's ARCH_REGISTRY ('VHeatIR' when absent; 'SwinIR' for baselines),
     'network_g': {keyword arguments of that arch, without 'type'},
     'params': state_dict, floating tensors in float16 (integer buffers as they are),
     'meta': {free dict: option file, iterations, training data, wall time, ...},
     'level': optional: the one sigma (0-255) or JPEG quality the model was fine-tuned for,
     'noise': optional, denoising: 'camera' for a model of camera noise, whose cond is what
              ``sigma='auto'`` reads (vheatir.api.estimate_noise); absent for white noise}

It describes itself: :func:`load_network` builds the network from ``arch`` and
``network_g`` without any option file. ``weights/manifest.json`` (beside the package)
lists the shipped files: a JSON list of entries ``{task, color, arch, file (relative to
weights/), option, iterations, sha256, size_bytes, ...}``, optionally with a
``benchmark`` dict and a ``level``. An entry without a level serves every level through the
conditioning input; one with a level is a specialist, used when that exact level is asked for;
one with ``noise: camera`` is used when ``sigma='auto'`` reads the noise as camera noise.
"""
import hashlib
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import torch
import yaml

from .archs import arch_class
from .atomic import atomic_write
from .complexity import count_params

FORMAT = 'vheatir-weights-v1'
DEFAULT_ARCH = 'VHeatIR'
TASKS = ('denoise', 'jpeg')
COLORS = ('gray', 'color')
NOISES = ('white', 'camera')
IN_CHANS = {'gray': 1, 'color': 3}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS_DIR = os.path.join(ROOT, 'weights')
MANIFEST = os.path.join(WEIGHTS_DIR, 'manifest.json')
SMALL = 'vHeatIR-S'  # a vHeatIR model's name when nothing names its size


def size_label(option: Optional[str]) -> str:
    """'vHeatIR-<size>' from a vHeatIR option file's name (``train_vHeatIR_<size>_<task>.yml``,
    as weights record it under ``meta['option']``); 'vHeatIR-S' for a name without one."""
    match = re.match(r'train_vHeatIR_([A-Za-z]+)_', os.path.basename(option or ''))
    return f'vHeatIR-{match.group(1)}' if match else SMALL


def _check_task_color(task: str, color: str) -> None:
    if task not in TASKS:
        raise ValueError(f'task must be one of {TASKS}, got {task!r}')
    if color not in COLORS:
        raise ValueError(f'color must be one of {COLORS}, got {color!r}')


def sha256_of(path: str) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _relpath_if_inside(path: str, base: str) -> str:
    """``path`` relative to ``base`` when it lies inside it, else absolute (manifests stay portable)."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path, base)
    return path if rel.startswith('..') else rel.replace(os.sep, '/')


def network_from_checkpoint(checkpoint: str, option_file: str,
                            key: Optional[str] = None) -> Tuple[torch.nn.Module, str, Dict[str, Any], str]:
    """Build ``network_g`` of ``option_file`` (any registered arch) and load ``checkpoint`` into it.

    ``checkpoint`` is a BasicSR ``net_g_*.pth``; ``key`` None prefers 'params_ema' over
    'params' (the EMA weights are the ones BasicSR validates); 'params' takes the raw
    weights, e.g. of a run no longer than the EMA's memory. Returns (network in eval mode,
    arch name, network_g keyword arguments without 'type', checkpoint key used). Raises
    ValueError with a one-line message when the two files do not fit together.
    """
    with open(option_file) as f:
        net_opt = dict((yaml.safe_load(f) or {}).get('network_g') or {})
    arch = net_opt.pop('type', DEFAULT_ARCH)
    try:
        cls = arch_class(arch)
    except KeyError:
        raise ValueError(f'{option_file}: network_g.type {arch!r} is not a registered BasicSR arch') from None
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    if key is None:
        key = 'params_ema' if 'params_ema' in ckpt else 'params'
    if key not in ckpt:
        raise ValueError(f'{checkpoint}: no "{key}" in this checkpoint (a BasicSR net_g_*.pth has "params", '
                         f'often "params_ema")')
    net = cls(**net_opt)
    try:
        net.load_state_dict(ckpt[key], strict=True)
    except RuntimeError as err:  # the message's second line names the first mismatching tensor
        detail = ' '.join(str(err).split('\n')[1:2]).strip()[:200]
        raise ValueError(f'{checkpoint} does not fit network_g of {option_file}: {detail}') from None
    return net.eval(), arch, net_opt, key


def export_weights(checkpoint: str, option_file: str, out_path: str, task: str, color: str,
                   meta: Optional[Dict[str, Any]] = None, level: Optional[float] = None,
                   key: Optional[str] = None, noise: str = 'white') -> Dict[str, Any]:
    """Turn a BasicSR checkpoint into a self-describing float16 weights file.

    Args:
        checkpoint: ``net_g_*.pth`` written by BasicSR: a dict with 'params' and optionally
            'params_ema' (preferred: the EMA weights are the ones BasicSR validates).
        option_file: the training option file (YAML); its ``network_g`` section is stored
            ('type' as ``arch``, any registered arch) so the file rebuilds the network alone.
        out_path: weights file to write (atomically: temporary name in the same folder,
            then ``os.replace``).
        task: 'denoise' or 'jpeg'.  color: 'gray' or 'color' (must match network_g.in_chans).
        meta: free-form provenance (iterations, training data, wall time, ...); the option
            file and the checkpoint key used are added.
        level: for a specialist fine-tuned at one level, that sigma (0-255) or JPEG quality;
            None for a model of every level.
        key: checkpoint entry to export; None prefers 'params_ema' (see network_from_checkpoint).
        noise: 'camera' for a denoiser of camera noise (see the format above), else 'white'.

    Returns:
        The manifest entry: task, color, arch, file (relative to ``weights/`` when inside it),
        option, iterations (``meta['total_iterations']`` for a continued run, else
        ``meta['iterations']``, or None), params (count of learnable parameters), sha256 and
        size_bytes of the written file, and level and noise when given.
    """
    _check_task_color(task, color)
    if noise not in NOISES or (noise == 'camera' and task != 'denoise'):
        raise ValueError(f"noise must be one of {NOISES} ('camera' for denoising only), got {noise!r}")
    net, arch, net_opt, key = network_from_checkpoint(checkpoint, option_file, key)
    if net_opt.get('in_chans', 3) != IN_CHANS[color]:
        raise ValueError(f'{option_file}: network_g.in_chans={net_opt.get("in_chans", 3)} '
                         f'does not match color={color!r}')
    # Integer buffers (SwinIR's relative-position index) keep their dtype: only weights are halved.
    params = {k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
              for k, v in net.state_dict().items()}

    meta = dict(meta or {})
    meta.setdefault('option', _relpath_if_inside(option_file, ROOT))
    meta.setdefault('checkpoint_key', key)
    payload = {'format': FORMAT, 'task': task, 'color': color, 'arch': arch, 'network_g': net_opt,
               'params': params, 'meta': meta}
    if level is not None:
        payload['level'] = level
    if noise == 'camera':
        payload['noise'] = noise
    atomic_write(out_path, lambda f: torch.save(payload, f))

    entry = {'task': task, 'color': color, 'arch': arch,
             'file': _relpath_if_inside(out_path, WEIGHTS_DIR),
             'option': meta['option'],
             'iterations': meta.get('total_iterations', meta.get('iterations')),
             'params': count_params(net),  # buffers (masks, indices) excluded
             'sha256': sha256_of(out_path),
             'size_bytes': os.path.getsize(out_path)}
    if level is not None:
        entry['level'] = level
    if noise == 'camera':
        entry['noise'] = noise
    return entry


def read_manifest(manifest: str = MANIFEST) -> List[Dict[str, Any]]:
    """The list of shipped-weights entries in ``manifest`` ([] when the file does not exist)."""
    if not os.path.exists(manifest):
        return []
    try:
        with open(manifest) as f:
            entries = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'{manifest}: unreadable weights manifest ({err})') from None
    if not isinstance(entries, list):
        raise ValueError(f'{manifest}: a weights manifest must be a JSON list of entries')
    return entries


def update_manifest(entry: Dict[str, Any], manifest: str = MANIFEST) -> List[Dict[str, Any]]:
    """Add ``entry`` to ``manifest``, replacing any entry with the same task, color and file.

    Written atomically; returns the new list of entries.
    """
    same = (entry['task'], entry['color'], entry['file'])
    entries = [e for e in read_manifest(manifest) if (e.get('task'), e.get('color'), e.get('file')) != same]
    entries.append(entry)
    entries.sort(key=lambda e: (e.get('task', ''), e.get('color', ''), e.get('file', '')))
    text = json.dumps(entries, indent=2) + '\n'
    atomic_write(manifest, lambda f: f.write(text.encode()))
    return entries


def default_entry(task: str, color: str, manifest: str = MANIFEST, arch: str = DEFAULT_ARCH,
                  level: Optional[float] = None, noise: str = 'white') -> Dict[str, Any]:
    """The manifest entry of the shipped weights for ``task`` ('denoise'|'jpeg') and ``color`` ('gray'|'color').

    Only entries of ``arch`` (vHeatIR by default; 'SwinIR' for the baselines) count. ``level``
    (a sigma on 0-255 or a JPEG quality, known exactly) picks the specialist for that level
    when one is listed; otherwise, and when ``level`` is None, the model of every level (no
    ``level`` in its entry). Entries with a ``label`` (comparison models such as a
    same-budget snapshot) count only when no unlabelled one is listed. ``noise`` 'camera' picks
    the camera-noise model (``noise: camera`` in its entry) where one is listed, else the same as
    'white'; camera-noise models are never picked otherwise. The last matching entry wins.
    Raises FileNotFoundError naming the pair when none is listed.
    """
    _check_task_color(task, color)
    pair = [e for e in read_manifest(manifest)
            if e.get('task') == task and e.get('color') == color and e.get('arch', DEFAULT_ARCH) == arch]
    pair = [e for e in pair if 'label' not in e] or pair  # labelled = comparison snapshots
    camera = [e for e in pair if e.get('noise') == 'camera']
    pair = camera if noise == 'camera' and camera else [e for e in pair if e.get('noise') != 'camera']
    matches = [e for e in pair if level is not None and e.get('level') == level] or \
        [e for e in pair if e.get('level') is None]
    if not matches:
        raise FileNotFoundError(f'no shipped {arch} weights for {task}/{color} in {manifest}; '
                                f'pass --weights FILE (or weights=...) or export some with scripts/export_weights.py')
    return matches[-1]


def default_weights(task: str, color: str, manifest: str = MANIFEST, arch: str = DEFAULT_ARCH,
                    level: Optional[float] = None, noise: str = 'white') -> str:
    """Path of the weights file of :func:`default_entry` (same arguments).

    Raises FileNotFoundError naming the pair when none is listed, or naming the file when the
    entry points to a missing file.
    """
    path = os.path.join(os.path.dirname(manifest), default_entry(task, color, manifest, arch, level, noise)['file'])
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file {path} listed in {manifest} for {task}/{color} is missing')
    return path


def read_weights(path: str) -> Dict[str, Any]:
    """Load and validate a weights file; returns its dict (params still float16 on the CPU).

    Raises FileNotFoundError for a missing file and ValueError, with a one-line message
    naming the file, for anything that is not a valid vHeatIR weights file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file not found: {path}')
    try:
        blob = torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # pickle, zip and weights-only policy errors all mean "not our file"
        raise ValueError(f'{path}: not a readable vHeatIR weights file '
                         f'(damaged, or not written by torch.save)') from None
    if not isinstance(blob, dict) or blob.get('format') != FORMAT:
        raise ValueError(f'{path}: not a vHeatIR weights file (expected format {FORMAT!r})')
    missing = [k for k in ('task', 'color', 'network_g', 'params') if k not in blob]
    if missing or blob['task'] not in TASKS or blob['color'] not in COLORS or \
            blob.get('noise', 'white') not in NOISES:
        raise ValueError(f'{path}: incomplete vHeatIR weights file (missing or invalid: '
                         f'{", ".join(missing) or "task/color/noise"})')
    return blob


def load_network(path: str, device: str = 'cpu') -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """Build the network stored in weights file ``path`` on ``device``, in eval mode, float32 params.

    Returns (network, info) with info = {'path', 'task', 'color', 'arch', 'network_g', 'meta',
    'level' (None for a model of every level), 'noise' ('white' or 'camera')}.
    Errors as in :func:`read_weights`; a state dict that does not fit its own network_g
    is reported as a corrupt file.
    """
    blob = read_weights(path)
    arch = blob.get('arch', DEFAULT_ARCH)
    try:
        cls = arch_class(arch)
    except KeyError:
        raise ValueError(f'{path}: unknown arch {arch!r}') from None
    try:
        net = cls(**blob['network_g'])
        # load_state_dict copies into the float32 parameters, so the float16 tensors are upcast here.
        net.load_state_dict(blob['params'], strict=True)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f'{path}: corrupt vHeatIR weights file ({str(err).splitlines()[0][:200]})') from None
    in_chans = blob['network_g'].get('in_chans', 3)
    if in_chans != IN_CHANS[blob['color']]:
        raise ValueError(f'{path}: color {blob["color"]!r} does not match in_chans={in_chans}')
    net.eval().requires_grad_(False).to(device)
    info = {'path': path, 'task': blob['task'], 'color': blob['color'], 'arch': arch,
            'network_g': blob['network_g'], 'meta': blob.get('meta', {}), 'level': blob.get('level'),
            'noise': blob.get('noise', 'white')}
    return net, info


def warm_start_params(path: str, in_chans: int) -> Dict[str, torch.Tensor]:
    """Float32 state dict of weights file ``path`` adapted to ``in_chans`` image channels.

    Used to start a colour model from a gray one (or the reverse) instead of from
    scratch: the body is copied; the head's image-input filters are spread evenly over
    the new channels (so an image with equal channels gives the same features) and the
    tail's output filters are replicated (or averaged, colour -> gray). Conditioning
    inputs keep their filters. The result loads with ``strict=True`` into
    ``VHeatIR(**network_g, in_chans=in_chans)``, or into BasicSR's ``SwinIR`` for SwinIR
    weights (same ``conv_first``/``conv_last`` names; its colour model also subtracts a
    fixed RGB mean, so there the warm start is close to, not exactly, the gray function).
    """
    blob = read_weights(path)
    params = {k: v.float() for k, v in blob['params'].items()}
    old = blob['network_g']['in_chans']
    if in_chans == old:
        return params
    head = params['conv_first.weight']  # (C, old + cond, 3, 3)
    image = head[:, :old].sum(dim=1, keepdim=True) / in_chans
    params['conv_first.weight'] = torch.cat([image.expand(-1, in_chans, -1, -1), head[:, old:]], dim=1).contiguous()
    for name in ('conv_last.weight', 'conv_last.bias'):  # (old, C, 3, 3) and (old,)
        tail = params[name].mean(dim=0, keepdim=True)
        params[name] = tail.expand(in_chans, *tail.shape[1:]).contiguous()
    return params


def deepen_params(path: str, depths: List[int], params: Optional[Dict[str, torch.Tensor]] = None,
                  seed: int = 0) -> Dict[str, torch.Tensor]:
    """Float32 state dict of the VHeatIR in weights file ``path`` with ``depths`` blocks per group.

    Each group keeps its blocks and gets new ones appended after them (before the group's
    conv). A new block is a pre-norm residual block whose two output projections (the HCO's
    ``out_proj`` and the MLP's last Linear) are zero, so it adds nothing: the deeper network
    computes the same function as the stored one, and training grows the new blocks from
    there. Their other parameters take VHeatIR's initialisation under ``torch.manual_seed(seed)``.
    ``params`` (default: the file's) lets this follow :func:`warm_start_params`. The result loads
    with ``strict=True`` into ``VHeatIR(**{**network_g, 'depths': depths})``.
    """
    blob = read_weights(path)
    if blob.get('arch', DEFAULT_ARCH) != DEFAULT_ARCH:
        raise ValueError(f'{path}: only {DEFAULT_ARCH} weights can be deepened, not {blob["arch"]!r}')
    old = list(blob['network_g'].get('depths', ()))
    depths = [int(d) for d in depths]
    if len(depths) != len(old) or any(n < o for n, o in zip(depths, old)):
        raise ValueError(f'{path}: depths {depths} must keep its {len(old)} groups, each at least as deep as {old}')
    if params is None:
        params = {k: v.float() for k, v in blob['params'].items()}
    with torch.random.fork_rng(devices=[]):   # seeded here without touching the caller's generator
        torch.manual_seed(seed)
        deeper = arch_class(DEFAULT_ARCH)(**{**blob['network_g'], 'depths': depths}).state_dict()
    for g, (o, n) in enumerate(zip(old, depths)):
        for b in range(o, n):
            for name in ('hco.out_proj.weight', 'hco.out_proj.bias', 'mlp.2.weight', 'mlp.2.bias'):
                deeper[f'groups.{g}.blocks.{b}.{name}'].zero_()
    missing = set(params) - set(deeper)
    if missing:
        raise ValueError(f'{path}: parameters {sorted(missing)[:3]} have no place in the deeper network')
    deeper.update(params)
    return deeper
