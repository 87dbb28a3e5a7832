"""Restoration model: BasicSR's SRModel plus a conditioning input, autocast, throughput logging,
DDP on the CPU, atomic checkpoints and skipping of non-finite losses."""
import math
import os
import time
from collections import OrderedDict
from typing import Optional

import torch
import torch.distributed as dist
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from ..amp import autocast_context, native_amp
from ..archs.window_pad import forward_padded
from ..compat import atomic_torch_save

class TrainingDivergedError(RuntimeError):
    """Too many consecutive training steps had a NaN or infinite loss (``train: max_bad_steps``)."""


@MODEL_REGISTRY.register()
class VHeatIRModel(SRModel):
    """Single-image restoration (denoising, JPEG deblocking) for networks taking ``(lq, cond)``.

    Data dicts carry ``lq``/``gt`` (B, C, H, W) in [0, 1] and optionally ``cond``
    (B, 1): sigma/255 or quality/100. The network gets ``cond`` when it was built
    with ``cond_chans > 0``. Options beyond SRModel's:

    - ``train: amp`` / ``val: amp``: None | 'bf16' | 'fp16' autocast (the DCT stays float32).
      On a CPU without native bf16 kernels, bf16 is dropped for float32 with a warning.
    - The training log reports ``samples_per_s``: patches per wall-clock second
      between consecutive steps (data loading included), over all processes.
    - ``train: max_bad_steps`` (default 10): a step whose loss is NaN/inf (on any
      process) is skipped with a warning (no backward, optimiser step or EMA update);
      that many consecutive bad steps stop training with :class:`TrainingDivergedError`.

    Distributed (``--launcher pytorch``/``slurm``): DDP also on the CPU (gloo), with
    ``device_ids`` only on GPUs. Checkpoints (rank 0 only) are written atomically, the
    network files before the training state that refers to them.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        for section in ('train', 'val'):
            settings = self.opt.get(section) or {}
            # Reference loops instead of oneDNN would be an order of magnitude slower than float32.
            settings['amp'] = native_amp(self.device, settings.get('amp'),
                                         lambda msg, s=section: get_root_logger().warning(f'{s}: {msg}.'))

    def model_to_device(self, net: nn.Module) -> nn.Module:
        """Move ``net`` to the device; wrap it in DDP (distributed) or DataParallel (several GPUs).

        basicsr passes ``device_ids=[torch.cuda.current_device()]`` even on the CPU, which fails
        without CUDA; CPU modules must be wrapped without ``device_ids``.
        """
        net = net.to(self.device)
        if self.opt['dist']:
            find_unused = self.opt.get('find_unused_parameters', False)
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    def init_training_settings(self) -> None:
        super().init_training_settings()
        if self.cri_pix is None:
            raise ValueError('VHeatIRModel needs train: pixel_opt (e.g. {type: L1Loss, loss_weight: 1.0})')
        self.max_bad_steps = int(self.opt['train'].get('max_bad_steps', 10))
        if self.max_bad_steps < 1:
            raise ValueError(f"train: max_bad_steps must be >= 1, got {self.opt['train']['max_bad_steps']!r}")
        self._bad_steps = 0
        self._last_saved_iter: Optional[int] = None
        self._log_batch_sizes()

    def setup_optimizers(self) -> None:
        """SRModel's optimiser, with ``train: heat_lr_mult`` (default 1) scaling the learning rate
        of the heat parameters (FVE lattices and Diffusivity projections) against the rest."""
        train_opt = self.opt['train']
        mult = float(train_opt.get('heat_lr_mult', 1.0))
        if mult == 1.0:
            return super().setup_optimizers()
        if not mult > 0:
            raise ValueError(f'train: heat_lr_mult must be > 0, got {train_opt["heat_lr_mult"]!r}')
        heat, rest = [], []
        for name, param in self.net_g.named_parameters():
            if param.requires_grad:
                (heat if '.fve.' in name or '.diffusivity.' in name else rest).append(param)
        optim = dict(train_opt['optim_g'])
        optim_type = optim.pop('type')
        groups = [{'params': rest}, {'params': heat, 'lr': optim['lr'] * mult}]
        self.optimizer_g = self.get_optimizer(optim_type, groups, **optim)
        self.optimizers.append(self.optimizer_g)

    def _log_batch_sizes(self) -> None:
        train_set = self.opt.get('datasets', {}).get('train')
        if not train_set or 'batch_size_per_gpu' not in train_set:
            return
        per_gpu = int(train_set['batch_size_per_gpu'])
        world = int(self.opt.get('world_size', 1))
        # build_dataloader: per process in distributed runs, times num_gpu under DataParallel.
        per_process = per_gpu if self.opt['dist'] else per_gpu * max(1, int(self.opt['num_gpu']))
        get_root_logger().info(f'Batch size: {per_process} per process x {world} process(es) = '
                               f'{per_process * world} global (batch_size_per_gpu: {per_gpu}).')

    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        self.cond = data['cond'].to(self.device) if 'cond' in data else None

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad(set_to_none=True)
        with autocast_context(self.device, self.opt['train'].get('amp')):
            self.output = forward_padded(self.net_g, self.lq, self.cond)
        loss_dict = OrderedDict()
        l_total = self.cri_pix(self.output.float(), self.gt)
        loss_dict['l_pix'] = l_total

        bad = self._loss_is_bad(l_total)
        if bad:
            self._skip_bad_step(current_iter, l_total)
        else:
            self._bad_steps = 0
            l_total.backward()
            self.optimizer_g.step()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        now = time.perf_counter()
        last = getattr(self, '_last_step_end', None)
        if last is not None:
            self.log_dict['samples_per_s'] = self.lq.shape[0] * self.opt.get('world_size', 1) / (now - last)
        self._last_step_end = now

        if self.ema_decay > 0 and not bad:
            self.model_ema(decay=self.ema_decay)

    def _loss_is_bad(self, loss: torch.Tensor) -> bool:
        """True when the loss is NaN/inf here or, in distributed runs, on any process.

        All ranks then take the same branch, so DDP's gradient all-reduce stays in lockstep.
        """
        bad = torch.logical_not(torch.isfinite(loss.detach())).to(torch.float32).reshape(1)
        if self.opt['dist']:
            dist.all_reduce(bad)
        return bool(bad.item() > 0)

    def _skip_bad_step(self, current_iter: int, loss: torch.Tensor) -> None:
        self._bad_steps += 1
        self.optimizer_g.zero_grad(set_to_none=True)
        local = loss.detach().float().item()
        where = f'{local}' if not math.isfinite(local) else f'{local} here, non-finite on another process'
        get_root_logger().warning(
            f'Iteration {current_iter}: non-finite loss ({where}); step skipped '
            f'({self._bad_steps} consecutive, train: max_bad_steps = {self.max_bad_steps}).')
        if self._bad_steps >= self.max_bad_steps:
            first = current_iter - self._bad_steps + 1
            if self._last_saved_iter is None:
                kept = 'no checkpoint has been saved yet'
            else:
                kept = (f"the last good checkpoint is iteration {self._last_saved_iter} in "
                        f"{self.opt['path'].get('experiments_root', 'the experiment folder')}; "
                        'fix the cause (e.g. a lower learning rate) and continue with --auto_resume')
            raise TrainingDivergedError(
                f'training stopped at iteration {current_iter}: the loss was NaN or infinite for '
                f'{self._bad_steps} consecutive iterations ({first}-{current_iter}, '
                f'train: max_bad_steps = {self.max_bad_steps}); {kept}.')

    # ------------------------------------------------------------------ checkpoints

    def save(self, epoch: int, current_iter: int) -> None:
        """Save the networks, then (only if they were written) the training state that refers to them."""
        if hasattr(self, 'net_g_ema'):
            ok = self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter,
                                   param_key=['params', 'params_ema'])
        else:
            ok = self.save_network(self.net_g, 'net_g', current_iter)
        if ok:
            self.save_training_state(epoch, current_iter)
        if current_iter != -1:
            self._last_saved_iter = current_iter

    @staticmethod
    def _save_with_retry(obj, path: str, what: str) -> bool:
        """Atomic save, retried 3 times like basicsr; logs and returns False if it keeps failing."""
        logger = get_root_logger()
        for attempt in range(3):
            try:
                atomic_torch_save(obj, path)
                return True
            except Exception as err:
                logger.warning(f'Cannot save {what} {path}: {err}; {2 - attempt} retries left.')
                time.sleep(1)
        logger.error(f'Could not save {what} {path}; training continues without this checkpoint.')
        return False

    @master_only
    def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> bool:
        """basicsr's ``save_network`` (rank 0 only), written atomically (``<file>.tmp`` then rename)."""
        name = 'latest' if current_iter == -1 else current_iter
        save_path = os.path.join(self.opt['path']['models'], f'{net_label}_{name}.pth')
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError('save_network needs one param_key per network.')
        save_dict = {}
        for net_, key_ in zip(nets, keys):
            state_dict = self.get_bare_model(net_).state_dict()
            save_dict[key_] = OrderedDict(
                (k[7:] if k.startswith('module.') else k, v.cpu()) for k, v in state_dict.items())
        return self._save_with_retry(save_dict, save_path, 'model')

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> bool:
        """basicsr's ``save_training_state`` (rank 0 only), written atomically."""
        if current_iter == -1:
            return True
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        save_path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        return self._save_with_retry(state, save_path, 'training state')

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        self._last_saved_iter = resume_state['iter']

    def test(self) -> None:
        net = getattr(self, 'net_g_ema', self.net_g)
        was_training = net.training
        net.eval()
        amp = self.opt.get('val', {}).get('amp')
        with torch.inference_mode(), autocast_context(self.device, amp):
            self.output = forward_padded(net, self.lq, self.cond).float()
        net.train(was_training)
