"""Names and sizes shared by the cloud integration tests (a module of its own: `conftest` is not unique)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLOUD = "coursevm-local"
PREFIX = "t5a-"
GIB = 1024 ** 3
# The test image: a real qcow2 (Glance inspects the data) larger than m1.tiny's 1 GB disk, with a min_disk
# and min_ram that m1.tiny (512 MB) does not meet but m1.course (20 GB, 2048 MB) does.
IMAGE_NAME = PREFIX + "image"
IMAGE_VIRTUAL_GB = 2
IMAGE_MIN_DISK = 3
IMAGE_MIN_RAM = 1024
