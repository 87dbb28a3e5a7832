"""Metrics; importing a module registers it in BasicSR's METRIC_REGISTRY."""
from . import psnrb  # noqa: F401
