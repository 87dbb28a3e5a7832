"""Datasets; importing a module registers it in BasicSR's DATASET_REGISTRY."""
from . import restoration_dataset  # noqa: F401
