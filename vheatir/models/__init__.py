"""Models; importing a module registers it in BasicSR's MODEL_REGISTRY."""
from . import vheatir_model  # noqa: F401
