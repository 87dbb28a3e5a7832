"""vHeatIR: image restoration with heat-conduction operators, on top of BasicSR.

``import vheatir`` loads only what restoring images needs (torch, numpy, scipy). BasicSR, which
adds about 2 s and 250 MB to every start-up, is imported by :func:`use_basicsr`: it registers our
architectures, datasets, models and metrics in BasicSR's registries (``vheatir/train.py``,
``vheatir/test.py`` and scripts that build BasicSR components call it). Importing
``vheatir.data``, ``vheatir.models`` or ``vheatir.metrics`` registers that subpackage alone.
"""
from .compat import install_torchvision_alias, patch_basicsr_yaml

install_torchvision_alias()  # before anything imports basicsr; costs nothing until it does

from .api import restore  # noqa: E402

__version__ = '0.1.0'


def use_basicsr() -> None:
    """Import BasicSR with our fixes and register our components in its registries; idempotent.

    Option files read by BasicSR's ``parse_options`` afterwards are plain YAML data
    (:func:`~vheatir.compat.patch_basicsr_yaml`).
    """
    from . import data, metrics, models  # noqa: F401  (registration; vheatir.models registers the archs)
    patch_basicsr_yaml()
