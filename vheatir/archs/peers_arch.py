"""The classic CNN denoisers vHeatIR is compared with, written from their papers.

They serve the quality/speed picture (``scripts/bench_speed.py --sections peers``): their
published PSNR beside the CPU time of their architectures at random initialisation. Each
takes and returns (B, C, H, W) images in [0, 1]; FFDNet and DRUNet also take ``cond`` (B, 1),
the noise level sigma/255, as VHeatIR does (``cond_chans = 1``), and pad any H x W themselves.

- DnCNN (Zhang et al., TIP 2017, "Beyond a Gaussian denoiser"): 17 3x3 conv layers of 64
  channels, batch norm in the 15 middle ones, predicting the noise (556k parameters, gray).
- FFDNet (Zhang et al., TIP 2018): the image split into four half-resolution sub-images
  (pixel unshuffle) with a noise-level map beside them, 15 layers of 64 channels for gray
  (12 of 96 for colour), then pixel shuffle back (486k parameters, gray).
- DRUNet (Zhang et al., TPAMI 2021, "Plug-and-play image restoration with deep denoiser
  prior"): a bias-free U-Net of four scales (64, 128, 256, 512 channels), four residual
  blocks per scale on each side, 2x2 strided convs down and 2x2 transposed convs up, the
  noise-level map as an extra input channel (32.6M parameters).
SwinIR is BasicSR's own ``SwinIR`` class with the paper's denoising settings.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _level_map(x: Tensor, cond: Optional[Tensor]) -> Tensor:
    """cond (B, 1) broadcast to a (B, 1, H, W) map beside x (B, C, H, W)."""
    if cond is None:
        raise ValueError('this network expects the noise level sigma/255 (cond), got None')
    b, _, h, w = x.shape
    return cond.to(x.dtype).reshape(b, 1, 1, 1).expand(b, 1, h, w)


def _pad_to(x: Tensor, multiple: int) -> Tensor:
    """x (B, C, H, W) replicate-padded at the bottom and right to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode='replicate') if h % multiple or w % multiple else x


def _conv_bn_relu(in_chans: int, out_chans: int, width: int, depth: int) -> nn.Sequential:
    """DnCNN's and FFDNet's body: conv+ReLU, depth - 2 x (conv+BN+ReLU), conv; 3x3, ``width`` wide."""
    layers = [nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(width, out_chans, 3, padding=1))
    return nn.Sequential(*layers)


class DnCNN(nn.Module):
    """DnCNN-S: x - noise(x), ``depth`` 3x3 conv layers of ``width`` channels."""

    cond_chans = 0

    def __init__(self, in_chans: int = 1, width: int = 64, depth: int = 17):
        super().__init__()
        self.body = _conv_bn_relu(in_chans, in_chans, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)


class FFDNet(nn.Module):
    """FFDNet on the pixel-unshuffled image (4 sub-images) and the noise-level map; width and
    depth default to the paper's gray model (64, 15); its colour model is (96, 12)."""

    cond_chans = 1

    def __init__(self, in_chans: int = 1, width: int = 64, depth: int = 15):
        super().__init__()
        self.body = _conv_bn_relu(4 * in_chans + 1, 4 * in_chans, width, depth)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        h, w = x.shape[-2:]
        sub = F.pixel_unshuffle(_pad_to(x, 2), 2)
        y = self.body(torch.cat([sub, _level_map(sub, cond)], dim=1))
        return F.pixel_shuffle(y, 2)[..., :h, :w]


class _ResBlock(nn.Sequential):
    """x + conv(ReLU(conv(x))), bias-free 3x3 convs."""

    def __init__(self, channels: int):
        super().__init__(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, channels, 3, padding=1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return x + super().forward(x)


class DRUNet(nn.Module):
    """DRUNet: bias-free residual U-Net over ``widths`` scales with ``blocks`` residual blocks per
    scale and side; the input is the image and the noise-level map."""

    cond_chans = 1

    def __init__(self, in_chans: int = 1, widths: tuple = (64, 128, 256, 512), blocks: int = 4):
        super().__init__()
        self.head = nn.Conv2d(in_chans + 1, widths[0], 3, padding=1, bias=False)
        self.down = nn.ModuleList(
            nn.Sequential(*[_ResBlock(a) for _ in range(blocks)], nn.Conv2d(a, b, 2, stride=2, bias=False))
            for a, b in zip(widths[:-1], widths[1:]))
        self.body = nn.Sequential(*[_ResBlock(widths[-1]) for _ in range(blocks)])
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(b, a, 2, stride=2, bias=False), *[_ResBlock(a) for _ in range(blocks)])
            for a, b in zip(widths[:-1], widths[1:]))
        self.tail = nn.Conv2d(widths[0], in_chans, 3, padding=1, bias=False)
        self.multiple = 2 ** (len(widths) - 1)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        h, w = x.shape[-2:]
        x = _pad_to(x, self.multiple)
        skips = [self.head(torch.cat([x, _level_map(x, cond)], dim=1))]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = self.body(skips[-1])
        for up, skip in zip(reversed(self.up), reversed(skips[1:])):
            y = up(y + skip)
        return self.tail(y + skips[0])[..., :h, :w]
