"""vHeatIR: image restoration with heat-conduction operators, on top of BasicSR.

``import vheatir`` loads no heavy module: torch, numpy and scipy come with ``vheatir.restore`` (or
``vheatir.api``), so torch-free helpers (``vheatir.imageio``, ``vheatir.allocator``) start fast. BasicSR, which
adds about 2 s and 250 MB to every start-up, is imported by :func:`use_basicsr`: it registers our
architectures, datasets, models and metrics in BasicSR's registries (``vheatir/train.py``,
``vheatir/test.py`` and scripts that build BasicSR components call it). Importing
``vheatir.data``, ``vheatir.models`` or ``vheatir.metrics`` registers that subpackage alone.
"""
from .torchvision_alias import install_torchvision_alias

install_torchvision_alias()  # before anything imports basicsr; costs nothing until it does

__version__ = '0.1.0'


def use_basicsr() -> None:
    """Import BasicSR with our fixes and register our components in its registries; idempotent.

    Option files read by BasicSR's ``parse_options`` afterwards are plain YAML data
    (:func:`~vheatir.compat.patch_basicsr_yaml`).
    """
    from . import data, metrics, models  # noqa: F401  (registration; vheatir.models registers the archs)
    from .compat import patch_basicsr_yaml
    patch_basicsr_yaml()


def __getattr__(name: str):
    """``vheatir.restore``, imported on first use (PEP 562), so ``import vheatir`` stays light."""
    if name == 'restore':
        from .api import restore
        return restore
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
