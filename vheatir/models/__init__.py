"""Models; importing a module registers it in BasicSR's MODEL_REGISTRY."""
from ..archs import register

register()  # BasicSR's model builds its network by name from ARCH_REGISTRY
from . import vheatir_model  # noqa: E402,F401
