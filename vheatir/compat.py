"""Fixes that let basicsr 1.4.2 run on current torchvision and on CPU-only machines.

Everything here patches *behaviour at import/run time* from inside our package;
site-packages is never edited.
"""
import sys
from os import path as osp

import torch


def install_torchvision_alias() -> None:
    """Make ``torchvision.transforms.functional_tensor`` importable again.

    basicsr 1.4.2 imports ``rgb_to_grayscale`` from that module, which torchvision
    removed; the same function lives in ``torchvision.transforms.functional``.
    Must run before ``basicsr`` is first imported.
    """
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional as functional
    except ImportError:  # torchvision missing: basicsr's own import error is clearer
        return
    sys.modules[name] = functional


def load_resume_state(opt: dict):
    """CPU-safe replacement for ``basicsr.train.load_resume_state``.

    basicsr maps the state onto ``torch.cuda.current_device()``, which fails
    without a GPU, and looks for ``experiments/<name>`` relative to the working
    directory instead of the experiment root it created. We load onto the CPU
    (optimisers move their state to the parameters' device when loaded) and look
    in ``opt['path']['training_states']``.

    Returns the resume-state dict, or ``None`` when there is nothing to resume.
    """
    from basicsr.utils import check_resume, scandir

    path = None
    if opt['auto_resume']:
        state_dir = opt['path']['training_states']
        if osp.isdir(state_dir):
            iters = [int(name.split('.state')[0]) for name in scandir(state_dir, suffix='.state', recursive=False)
                     if name.split('.state')[0].isdigit()]
            if iters:
                path = osp.join(state_dir, f'{max(iters)}.state')
                opt['path']['resume_state'] = path
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
    if path is None:
        return None
    # Our own training-state files hold optimiser/scheduler dicts (Counters, lists), not just tensors.
    state = torch.load(path, map_location='cpu', weights_only=False)
    check_resume(opt, state['iter'])
    return state


def patch_basicsr_train() -> None:
    """Point ``basicsr.train.train_pipeline`` at our CPU-safe resume loader."""
    import basicsr.train
    basicsr.train.load_resume_state = load_resume_state
