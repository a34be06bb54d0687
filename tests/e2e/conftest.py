import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))


@pytest.fixture(scope="session")
def local_cloud():
    """openstacksdk connected to the running local cloud as the course project (call it after the job ran:
    the job starts the cloud)."""
    def connect():
        import openstack

        status = subprocess.run(["/usr/bin/python3", str(ROOT / "tests" / "cloud" / "cloud.py"), "status", "--json"],
                                capture_output=True, text=True, check=False)
        os.environ["OS_CLIENT_CONFIG_FILE"] = json.loads(status.stdout)["clouds_yaml"]
        return openstack.connect(cloud="coursevm-local")
    return connect
