"""Architectures; importing a module registers it in BasicSR's ARCH_REGISTRY."""
from . import vheatir_arch  # noqa: F401
