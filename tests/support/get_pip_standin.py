"""Stand-in for pypa's get-pip.py, which ansible-test fetches from a host outside the package registries.

ansible-test runs it as `python get_pip_X_Y.py --disable-pip-version-check pip==X.Y [--no-setuptools] [--no-wheel]`
inside a new venv made --without-pip. The same result: ensurepip gives the venv a pip, which then installs the
pinned pip from PyPI. tests/run.sh copies this file into ansible-test's cache under the name it looks for.
"""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
requested = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + requested)
