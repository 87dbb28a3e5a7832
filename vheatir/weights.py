"""The shipped-weights format of vHeatIR, in one place.

A weights file is a ``torch.save``'d plain dict (loadable with ``weights_only=True``)::

    {'format': 'vheatir-weights-v1',
     'task': 'denoise' | 'jpeg',
     'color': 'gray' | 'color',
     'network_g': {VHeatIR keyword arguments, without 'type'},
     'params': state_dict with float16 tensors,
     'meta': {free dict: option file, iterations, training data, wall time, ...}}

It describes itself: :func:`load_network` builds the network from ``network_g``
without any option file. ``weights/manifest.json`` (beside the package) lists the
shipped files: a JSON list of entries ``{task, color, file (relative to weights/),
option, iterations, sha256, size_bytes, ...}``, optionally with a ``benchmark`` dict.
"""
import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import torch
import yaml

from .archs.vheatir_arch import VHeatIR
from .compat import atomic_write

FORMAT = 'vheatir-weights-v1'
TASKS = ('denoise', 'jpeg')
COLORS = ('gray', 'color')
IN_CHANS = {'gray': 1, 'color': 3}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS_DIR = os.path.join(ROOT, 'weights')
MANIFEST = os.path.join(WEIGHTS_DIR, 'manifest.json')


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


def export_weights(checkpoint: str, option_file: str, out_path: str, task: str, color: str,
                   meta: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Turn a BasicSR checkpoint into a self-describing float16 weights file.

    Args:
        checkpoint: ``net_g_*.pth`` written by BasicSR: a dict with 'params' and optionally
            'params_ema' (preferred: the EMA weights are the ones BasicSR validates).
        option_file: the training option file (YAML); its ``network_g`` section, minus
            'type', is stored so the file can rebuild the network on its own.
        out_path: weights file to write (atomically: temporary name in the same folder,
            then ``os.replace``).
        task: 'denoise' or 'jpeg'.  color: 'gray' or 'color' (must match network_g.in_chans).
        meta: free-form provenance (iterations, training data, wall time, ...); the option
            file and the checkpoint key used are added.

    Returns:
        The manifest entry: task, color, file (relative to ``weights/`` when inside it),
        option, iterations (``meta['iterations']`` or None), params (count), sha256 and
        size_bytes of the written file.
    """
    _check_task_color(task, color)
    with open(option_file) as f:
        net_opt = dict((yaml.safe_load(f) or {}).get('network_g') or {})
    if net_opt.pop('type', 'VHeatIR') != 'VHeatIR':
        raise ValueError(f'{option_file}: network_g.type is not VHeatIR')
    if net_opt.get('in_chans', 3) != IN_CHANS[color]:
        raise ValueError(f'{option_file}: network_g.in_chans={net_opt.get("in_chans", 3)} '
                         f'does not match color={color!r}')

    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    key = 'params_ema' if 'params_ema' in ckpt else 'params'
    if key not in ckpt:
        raise ValueError(f'{checkpoint}: not a BasicSR checkpoint (no "params" or "params_ema")')
    # Building the network and loading strictly proves that option file and checkpoint agree.
    net = VHeatIR(**net_opt)
    try:
        net.load_state_dict(ckpt[key], strict=True)
    except RuntimeError as err:  # the message's second line names the first mismatching tensor
        detail = ' '.join(str(err).split('\n')[1:2]).strip()[:200]
        raise ValueError(f'{checkpoint} does not fit network_g of {option_file}: {detail}') from None
    params = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()}

    meta = dict(meta or {})
    meta.setdefault('option', _relpath_if_inside(option_file, ROOT))
    meta.setdefault('checkpoint_key', key)
    payload = {'format': FORMAT, 'task': task, 'color': color, 'network_g': net_opt,
               'params': params, 'meta': meta}
    atomic_write(out_path, lambda f: torch.save(payload, f))

    return {'task': task, 'color': color,
            'file': _relpath_if_inside(out_path, WEIGHTS_DIR),
            'option': meta['option'],
            'iterations': meta.get('iterations'),
            'params': sum(v.numel() for v in params.values()),
            'sha256': sha256_of(out_path),
            'size_bytes': os.path.getsize(out_path)}


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


def default_weights(task: str, color: str, manifest: str = MANIFEST) -> str:
    """Path of the shipped weights for ``task`` ('denoise'|'jpeg') and ``color`` ('gray'|'color').

    The last manifest entry for that pair wins. Raises FileNotFoundError naming the pair
    when none is listed, or naming the file when the entry points to a missing file.
    """
    _check_task_color(task, color)
    matches = [e for e in read_manifest(manifest) if e.get('task') == task and e.get('color') == color]
    if not matches:
        raise FileNotFoundError(f'no shipped weights for {task}/{color} in {manifest}; '
                                f'pass --weights FILE (or weights=...) or export some with scripts/export_weights.py')
    path = os.path.join(os.path.dirname(manifest), matches[-1]['file'])
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
    if missing or blob['task'] not in TASKS or blob['color'] not in COLORS:
        raise ValueError(f'{path}: incomplete vHeatIR weights file (missing or invalid: '
                         f'{", ".join(missing) or "task/color"})')
    return blob


def load_network(path: str, device: str = 'cpu') -> Tuple[VHeatIR, Dict[str, Any]]:
    """Build the VHeatIR stored in weights file ``path`` on ``device``, in eval mode, float32 params.

    Returns (network, info) with info = {'path', 'task', 'color', 'network_g', 'meta'}.
    Errors as in :func:`read_weights`; a state dict that does not fit its own network_g
    is reported as a corrupt file.
    """
    blob = read_weights(path)
    try:
        net = VHeatIR(**blob['network_g'])
        # load_state_dict copies into the float32 parameters, so the float16 tensors are upcast here.
        net.load_state_dict(blob['params'], strict=True)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f'{path}: corrupt vHeatIR weights file ({str(err).splitlines()[0][:200]})') from None
    if net.in_chans != IN_CHANS[blob['color']]:
        raise ValueError(f'{path}: color {blob["color"]!r} does not match in_chans={net.in_chans}')
    net.eval().requires_grad_(False).to(device)
    info = {'path': path, 'task': blob['task'], 'color': blob['color'],
            'network_g': blob['network_g'], 'meta': blob.get('meta', {})}
    return net, info
