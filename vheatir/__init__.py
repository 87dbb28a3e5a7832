"""vHeatIR: image restoration with heat-conduction operators, on top of BasicSR.

Importing this package registers our architectures, datasets, models and metrics
in BasicSR's registries.
"""
from .compat import install_torchvision_alias, patch_basicsr_yaml

install_torchvision_alias()  # before anything imports basicsr

from . import archs, data, metrics, models  # noqa: E402,F401  (registration side effects)

patch_basicsr_yaml()  # option files are data: basicsr's own loader would build Python objects
from .api import restore  # noqa: E402

__version__ = '0.1.0'
