"""Restoration model: BasicSR's SRModel plus a conditioning input, autocast and throughput logging."""
import time
from collections import OrderedDict
from contextlib import nullcontext
from typing import ContextManager, Optional

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def autocast_context(device: torch.device, amp: Optional[str]) -> ContextManager:
    """``torch.autocast`` for amp in {'bf16', 'fp16'} on ``device``; a no-op for None/'fp32'."""
    if amp in (None, 'fp32', False):
        return nullcontext()
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of None, 'fp32', 'bf16', 'fp16'; got {amp!r}")
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp])


@MODEL_REGISTRY.register()
class VHeatIRModel(SRModel):
    """Single-image restoration (denoising, JPEG deblocking) for networks taking ``(lq, cond)``.

    Data dicts carry ``lq``/``gt`` (B, C, H, W) in [0, 1] and optionally ``cond``
    (B, 1): sigma/255 or quality/100. The network gets ``cond`` when it was built
    with ``cond_chans > 0``. Options beyond SRModel's:

    - ``train: amp`` / ``val: amp``: None | 'bf16' | 'fp16' autocast (the DCT stays float32).
    - The training log reports ``samples_per_s``: patches per wall-clock second
      between consecutive steps (data loading included).
    """

    def init_training_settings(self) -> None:
        super().init_training_settings()
        if self.cri_pix is None:
            raise ValueError('VHeatIRModel needs train: pixel_opt (e.g. {type: L1Loss, loss_weight: 1.0})')

    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        self.cond = data['cond'].to(self.device) if 'cond' in data else None

    def _run(self, net: nn.Module, lq: torch.Tensor) -> torch.Tensor:
        bare = self.get_bare_model(net)
        if getattr(bare, 'cond_chans', 0):
            return net(lq, self.cond)
        return net(lq)

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad(set_to_none=True)
        with autocast_context(self.device, self.opt['train'].get('amp')):
            self.output = self._run(self.net_g, self.lq)
        loss_dict = OrderedDict()
        l_total = self.cri_pix(self.output.float(), self.gt)
        loss_dict['l_pix'] = l_total
        l_total.backward()
        self.optimizer_g.step()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        now = time.perf_counter()
        last = getattr(self, '_last_step_end', None)
        if last is not None:
            self.log_dict['samples_per_s'] = self.lq.shape[0] * self.opt.get('world_size', 1) / (now - last)
        self._last_step_end = now

        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self) -> None:
        net = getattr(self, 'net_g_ema', self.net_g)
        was_training = net.training
        net.eval()
        amp = self.opt.get('val', {}).get('amp')
        with torch.inference_mode(), autocast_context(self.device, amp):
            self.output = self._run(net, self.lq).float()
        net.train(was_training)
