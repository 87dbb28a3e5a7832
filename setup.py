"""vHeatIR: heat-conduction image restoration on BasicSR. Install with `bash scripts/setup.sh`."""
from setuptools import find_packages, setup

setup(
    name='vheatir',
    version='0.1.0',
    description='Image restoration (denoising, JPEG deblocking) with heat-conduction operators, on BasicSR',
    packages=find_packages(include=['vheatir', 'vheatir.*']),
    python_requires='>=3.10',
    # basicsr's own setup.py imports torch at build time, so scripts/setup.sh installs it first
    # with --no-build-isolation; listing it here keeps pip from silently replacing it.
    install_requires=['torch==2.14.1', 'torchvision==0.29.1', 'basicsr==1.4.2', 'opencv-python>=4.8',
                      'scikit-image>=0.22', 'scipy>=1.10', 'lmdb>=1.4', 'tqdm', 'pyyaml', 'numpy', 'pillow'],
    # scripts/benchmark.py --model bm3d and the figure scripts
    extras_require={'bench': ['bm3d>=4.0', 'matplotlib']},
)
