"""basicsr 1.4.2 on current torchvision: an import alias for a module torchvision removed.

Torch-free, so ``import vheatir`` can install it without loading torch.
"""
import importlib.abc
import importlib.util
import sys


class _FunctionalTensorAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torchvision.transforms.functional_tensor`` (only when nothing else does) and loads
    it as ``torchvision.transforms.functional``."""

    NAME = 'torchvision.transforms.functional_tensor'

    def find_spec(self, fullname, path, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname == self.NAME else None

    def create_module(self, spec):
        import torchvision.transforms.functional as functional
        return functional

    def exec_module(self, module) -> None:
        pass


def install_torchvision_alias() -> None:
    """Make ``torchvision.transforms.functional_tensor`` importable again.

    basicsr 1.4.2 imports ``rgb_to_grayscale`` from that module, which torchvision
    removed; the same function lives in ``torchvision.transforms.functional``. The alias
    is a finder at the end of ``sys.meta_path``: torchvision is imported only when basicsr
    (or anything else) asks for the module, so ``import vheatir`` stays light. Must run
    before ``basicsr`` is first imported.
    """
    if not any(isinstance(f, _FunctionalTensorAlias) for f in sys.meta_path):
        sys.meta_path.append(_FunctionalTensorAlias())
