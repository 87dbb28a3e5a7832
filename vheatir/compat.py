"""Fixes that let basicsr 1.4.2 run on CPU-only machines, distributed without CUDA, and resume
safely after a crash (its torchvision import alias is in :mod:`vheatir.torchvision_alias`).

- ``load_resume_state`` / ``find_resume_state`` / ``atomic_torch_save``: CPU-safe
  resume that skips incomplete checkpoints; atomic checkpoint writes.
- ``init_dist`` / ``patch_basicsr_dist``: torchrun/Slurm process groups with gloo on
  the CPU and nccl on GPUs.
- ``load_option_file`` / ``patch_basicsr_yaml``: option files are parsed as plain YAML data
  (basicsr's loader builds arbitrary Python objects, so an option file could run code).

Everything here patches *behaviour at import/run time* from inside our package;
site-packages is never edited.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import zipfile
from datetime import timedelta
from os import path as osp
from typing import Optional, Sequence

import torch
import torch.distributed as dist
import yaml

from .atomic import TMP_SUFFIX, atomic_write

_STATE_NAME = re.compile(r'^(\d+)\.state$')


# --------------------------------------------------------------------------- crash-safe checkpoints

def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` through :func:`atomic_write`: never leaves a truncated file at ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def _is_complete_checkpoint(path: str) -> bool:
    """Cheap integrity check of a ``torch.save`` file: it exists and its zip directory is readable.

    ``torch.save`` writes a zip archive whose central directory is at the very end, so
    a truncated file fails here without loading any tensors.
    """
    if not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return bool(zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_training_state(path: str) -> dict:
    """A ``<iter>.state`` file, unpickled with ``weights_only=True``: tensors, numbers, strings and
    containers only, never code. basicsr's MultiStepRestartLR keeps its milestones in a Counter,
    the one class beyond those that a training state holds."""
    with torch.serialization.safe_globals([collections.Counter]):
        return torch.load(path, map_location='cpu', weights_only=True)


def _resume_networks(opt: dict, it: int) -> list[str]:
    """Model files ``check_resume`` will load when resuming from iteration ``it``."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [osp.join(opt['path']['models'], f"net_{key.replace('network_', '')}_{it}.pth")
            for key in opt if key.startswith('network_') and key not in ignored]


def find_resume_state(opt: dict, log=print):
    """Newest usable training state under ``opt['path']['training_states']``.

    A state ``<iter>.state`` is usable when it loads, records that iteration, and every
    network file resuming will load (``models/net_g_<iter>.pth`` ...) is complete.
    ``*.tmp`` leftovers of interrupted saves are never considered. Unusable states
    are reported through ``log`` and skipped, so a damaged newest state falls back
    to the one before it.

    Returns ``(path, state)`` or ``(None, None)``.
    """
    state_dir = opt['path']['training_states']
    if not osp.isdir(state_dir):
        return None, None
    iters = sorted((int(m.group(1)) for m in map(_STATE_NAME.match, os.listdir(state_dir)) if m), reverse=True)
    for it in iters:
        path = osp.join(state_dir, f'{it}.state')
        missing = [p for p in _resume_networks(opt, it) if not _is_complete_checkpoint(p)]
        if missing:
            log(f'Skipping training state {path}: network file {missing[0]} is missing or incomplete.')
            continue
        try:
            state = load_training_state(path)
        except Exception as err:  # truncated / corrupt file: any unpickling error
            log(f'Skipping training state {path}: cannot load it ({type(err).__name__}: {err}).')
            continue
        if not isinstance(state, dict) or state.get('iter') != it:
            log(f'Skipping training state {path}: it does not hold iteration {it}.')
            continue
        return path, state
    return None, None


def remove_tmp_leftovers(opt: dict) -> None:
    """Delete ``*.tmp`` files left by saves that were interrupted (rank 0, before training starts)."""
    for key in ('training_states', 'models'):
        folder = opt['path'].get(key)
        if folder and osp.isdir(folder):
            for name in os.listdir(folder):
                if name.endswith(TMP_SUFFIX):
                    try:
                        os.remove(osp.join(folder, name))
                    except OSError:
                        pass


def load_resume_state(opt: dict):
    """CPU-safe, crash-safe replacement for ``basicsr.train.load_resume_state``.

    basicsr maps the state onto ``torch.cuda.current_device()``, which fails
    without a GPU, looks for ``experiments/<name>`` relative to the working
    directory instead of the experiment root it created, and picks the highest
    ``*.state`` even when it is truncated or its network file is missing. We load
    onto the CPU (optimisers move their state to the parameters' device when
    loaded), look in ``opt['path']['training_states']``, and with
    ``--auto_resume`` take the newest state that is complete (see
    :func:`find_resume_state`).

    Returns the resume-state dict, or ``None`` when there is nothing to resume.
    """
    from basicsr.utils import check_resume

    def log(msg: str) -> None:  # basicsr's logger is not set up yet at this point
        if opt.get('rank', 0) == 0:
            print(msg, file=sys.stderr, flush=True)

    path = state = None
    if opt['auto_resume']:
        path, state = find_resume_state(opt, log)
        if path is not None:
            opt['path']['resume_state'] = path
            if opt.get('rank', 0) == 0:
                remove_tmp_leftovers(opt)
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
        state = load_training_state(path)
    _check_ranks_agree(None if state is None else state['iter'])
    if path is None:
        return None
    check_resume(opt, state['iter'])
    return state


def _check_ranks_agree(resume_iter: Optional[int]) -> None:
    """In distributed runs every process must resume from the same iteration (or none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    iters: list = [None] * dist.get_world_size()
    dist.all_gather_object(iters, resume_iter)
    if len(set(iters)) > 1:
        found = ', '.join(f'rank {r}: {"nothing" if it is None else f"iteration {it}"}' for r, it in enumerate(iters))
        raise RuntimeError(f'The processes found different states to resume from ({found}). Every node must see '
                           'the same experiments/ folder (a shared filesystem) to resume a multi-node run.')


# --------------------------------------------------------------------------- distributed training

DIST_TIMEOUT_MIN = 60  # rank 0 validates while the other ranks wait at the next collective


def dist_backend(num_gpu) -> str:
    """'nccl' when training on GPUs (CUDA present and ``num_gpu`` not 0), else 'gloo'."""
    return 'nccl' if torch.cuda.is_available() and num_gpu != 0 else 'gloo'


def init_dist(launcher: str, backend: Optional[str] = None, num_gpu=None, timeout_min: float = DIST_TIMEOUT_MIN,
              port: Optional[int] = None, **kwargs) -> None:
    """Replacement for ``basicsr.utils.dist_util.init_dist`` that also works without CUDA.

    basicsr's version always calls ``torch.cuda.set_device`` and defaults to nccl.
    Here the backend is nccl on GPUs and gloo on the CPU (``dist_backend``), the
    process binds to GPU ``LOCAL_RANK`` only when it uses GPUs, and the process group
    is set up from the environment torchrun (``--launcher pytorch``) or Slurm
    (``--launcher slurm``) provides, so multi-node runs need no option changes.
    """
    backend = backend or dist_backend(num_gpu)
    use_cuda = backend == 'nccl'
    if launcher == 'slurm':  # as basicsr: derive torchrun's variables from Slurm's
        proc_id = int(os.environ['SLURM_PROCID'])
        node_list = os.environ['SLURM_NODELIST']
        # An argument list, no shell: the node list is data, whatever characters it holds.
        hosts = subprocess.run(['scontrol', 'show', 'hostname', node_list], capture_output=True, text=True,
                               check=True).stdout.split()
        if not hosts:
            raise RuntimeError(f'scontrol show hostname {node_list!r} listed no host')
        os.environ['MASTER_ADDR'] = hosts[0]
        if port is not None:
            os.environ['MASTER_PORT'] = str(port)
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['RANK'] = str(proc_id)
        if 'SLURM_LOCALID' in os.environ:
            os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']
    elif launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher}')
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(f'--launcher {launcher} needs the environment variable {var}; start training with '
                               'torchrun (python -m torch.distributed.run) or srun.')
    if use_cuda:
        import torch.multiprocessing as mp
        if mp.get_start_method(allow_none=True) is None:
            mp.set_start_method('spawn')  # as basicsr: CUDA does not survive fork in dataloader workers
        local_rank = int(os.environ.get('LOCAL_RANK', int(os.environ['RANK']) % torch.cuda.device_count()))
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method='env://', timeout=timedelta(minutes=timeout_min), **kwargs)


class OptionFileError(ValueError):
    """An option file cannot be read or holds more than plain YAML data; the message is one line."""


class SafeOrderedLoader(yaml.SafeLoader):
    """YAML's safe loader (plain data only: no Python tags) with mappings as OrderedDict, as basicsr's."""


SafeOrderedLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: collections.OrderedDict(loader.construct_pairs(node, deep=True)))


class SafeOrderedDumper(yaml.SafeDumper):
    """The dumper matching :class:`SafeOrderedLoader` (OrderedDict written as a plain mapping)."""


SafeOrderedDumper.add_representer(collections.OrderedDict,
                                  lambda dumper, data: dumper.represent_dict(data.items()))


def safe_ordered_yaml() -> tuple:
    """(Loader, Dumper) in place of ``basicsr.utils.options.ordered_yaml``; see :class:`SafeOrderedLoader`."""
    return SafeOrderedLoader, SafeOrderedDumper


def load_option_file(path: str) -> dict:
    """Parse an option file as plain YAML data; :class:`OptionFileError` naming the file otherwise."""
    try:
        with open(path) as f:
            return yaml.load(f, Loader=SafeOrderedLoader) or {}
    except OSError as err:
        raise OptionFileError(f'{path}: cannot read it ({err.strerror})') from None
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' (line {mark.line + 1})' if mark is not None else ''
        problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
        if isinstance(err, yaml.constructor.ConstructorError):
            problem = f'{problem}; option files hold plain YAML data only, no Python tags'
        raise OptionFileError(f'{path}{where}: {problem}') from None


def _force_yml_value(value: str):
    """basicsr's ``--force_yml`` value parsing, with lists read by ``ast.literal_eval`` (basicsr ``eval``s them)."""
    import ast

    if value.startswith('['):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise OptionFileError(f'--force_yml: {value!r} is not a list of plain values') from None
    return _BASICSR_YML_VALUE(value)


_BASICSR_YML_VALUE = None


def patch_basicsr_yaml() -> None:
    """Make basicsr's ``parse_options`` read option files with :func:`safe_ordered_yaml`, and
    ``--force_yml`` lists as literals, so neither can run code."""
    global _BASICSR_YML_VALUE
    import basicsr.utils.options
    basicsr.utils.options.ordered_yaml = safe_ordered_yaml
    if _BASICSR_YML_VALUE is None:
        _BASICSR_YML_VALUE = basicsr.utils.options._postprocess_yml_value
        basicsr.utils.options._postprocess_yml_value = _force_yml_value


def read_train_options(argv: Sequence[str]) -> dict:
    """The option file named by ``-opt`` in ``argv``, parsed as basicsr will (or {} if absent).

    Raises :class:`OptionFileError` when it is not plain YAML data.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt', type=str)
    args, _ = parser.parse_known_args(list(argv))
    if not args.opt or not osp.isfile(args.opt):
        return {}
    return load_option_file(args.opt)


def patch_basicsr_dist(opt: dict) -> None:
    """Make basicsr's ``parse_options`` call our :func:`init_dist` with this run's ``num_gpu``.

    ``opt`` is the raw option file (``read_train_options``): ``num_gpu`` (0, N or
    'auto') picks the backend; optional ``dist_timeout_min`` (default 60) bounds how
    long a rank waits for the others. ``dist_params`` (slurm) still reach us.
    """
    import basicsr.utils.dist_util
    import basicsr.utils.options

    num_gpu = opt.get('num_gpu', 0)
    if num_gpu == 'auto':
        num_gpu = torch.cuda.device_count()
    timeout_min = float(opt.get('dist_timeout_min', DIST_TIMEOUT_MIN))

    def _init_dist(launcher, **kwargs):
        kwargs.setdefault('num_gpu', num_gpu)
        kwargs.setdefault('timeout_min', timeout_min)
        init_dist(launcher, **kwargs)

    basicsr.utils.options.init_dist = _init_dist  # parse_options imported the name
    basicsr.utils.dist_util.init_dist = _init_dist


def patch_basicsr_train() -> None:
    """Point ``basicsr.train.train_pipeline`` at our CPU-safe, crash-safe resume loader."""
    import basicsr.train
    basicsr.train.load_resume_state = load_resume_state
