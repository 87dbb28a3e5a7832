"""vHeatIR: image restoration with heat-conduction operators, on top of BasicSR.

Importing this package registers our architectures, datasets, models and metrics
in BasicSR's registries.
"""
from .compat import install_torchvision_alias

install_torchvision_alias()  # before anything imports basicsr

from . import archs, data, metrics, models  # noqa: E402,F401  (registration side effects)
from .api import restore  # noqa: E402

__version__ = '0.1.0'
