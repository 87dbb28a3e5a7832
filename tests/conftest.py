import os
import sys

# Tests run from a checkout without installing: make `import vheatir` find the package.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from vheatir.compat import install_torchvision_alias  # noqa: E402

install_torchvision_alias()  # before any test imports basicsr directly
