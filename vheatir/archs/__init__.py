"""Architectures. Their modules do not import BasicSR, so restoring images never loads it;
:func:`register` adds them to BasicSR's ARCH_REGISTRY for its training and test pipelines."""
from typing import Dict

from .vheatir_arch import VHeatIR

ARCHS: Dict[str, type] = {'VHeatIR': VHeatIR}


def register() -> None:
    """Add :data:`ARCHS` to BasicSR's ARCH_REGISTRY (imports basicsr); idempotent."""
    from basicsr.utils.registry import ARCH_REGISTRY
    for name, cls in ARCHS.items():
        if name not in ARCH_REGISTRY:
            ARCH_REGISTRY.register(cls)


def arch_class(name: str) -> type:
    """The network class called ``name``: ours without importing BasicSR, else BasicSR's
    registered one (e.g. 'SwinIR'). KeyError when neither knows it."""
    if name in ARCHS:
        return ARCHS[name]
    from basicsr.utils.registry import ARCH_REGISTRY
    if name not in ARCH_REGISTRY:
        raise KeyError(name)
    return ARCH_REGISTRY.get(name)
