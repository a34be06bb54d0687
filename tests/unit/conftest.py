"""Make the checkout importable as ansible_collections.coursevm.openstack for plain pytest runs.

`ansible-test units` provides this tree itself; plain pytest (the README's test command) gets the same
layout from a symlink under .build/, which ./coursevm also uses as ANSIBLE_COLLECTIONS_PATH.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collection_tree():
    # Inside an ansible_collections/coursevm/openstack checkout (ansible-test's own copy): use it as it is.
    if ROOT.parent.name == "coursevm" and ROOT.parent.parent.name == "ansible_collections":
        return ROOT.parent.parent.parent
    base = ROOT / ".build" / "collections"
    link = base / "ansible_collections" / "coursevm" / "openstack"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    return base


sys.path.insert(0, str(_collection_tree()))
