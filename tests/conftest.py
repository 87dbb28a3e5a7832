import os
import sys

# Tests run from a checkout without installing: make `import vheatir` find the package.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from vheatir.torchvision_alias import install_torchvision_alias  # noqa: E402

install_torchvision_alias()  # before any test imports basicsr directly


import pytest  # noqa: E402


@pytest.fixture(scope='module')
def one_torch_thread():
    """Run a module's tests on one torch thread (small tensors: threads only add overhead and noise)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ducc_param():
    from vheatir.archs.heat_ops import ducc0_module
    return pytest.param('ducc', marks=pytest.mark.skipif(ducc0_module() is None, reason='ducc0 is not installed'))


# dct_impl 'ducc' as a test parameter, skipped where the optional ducc0 package is missing.
DUCC = _ducc_param()
