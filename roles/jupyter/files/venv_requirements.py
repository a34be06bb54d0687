"""Say whether a venv already satisfies requirement specifiers, their dependencies included.

Run by the venv's own Python with the specifiers as arguments (role coursevm.openstack.jupyter, entry point
venv_packages). Prints JSON: {"missing": [what pip would have to install or change], "installed": {name: version}}
and exits 0 when nothing is missing, 1 otherwise. Reads only: pip runs only when something is missing, so a
re-run that finds the venv complete costs one Python start instead of a whole pip resolution.
"""

import json
import sys
from importlib import metadata

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a venv without `packaging` is not a Jupyter venv yet: let pip install everything
    print(json.dumps({"missing": sys.argv[1:], "installed": {}}))
    sys.exit(1)


def main(specifiers):
    installed = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            installed.setdefault(canonicalize_name(name), dist)
    missing, found, seen = [], {}, set()
    todo = [(Requirement(spec), "") for spec in specifiers]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, str(requirement.specifier), tuple(sorted(requirement.extras)))
        if key in seen:
            continue
        seen.add(key)
        dist = installed.get(name)
        if dist is None or not requirement.specifier.contains(dist.version, prereleases=True):
            missing.append(str(requirement) + ("" if dist is None else f" ({dist.version} installed)"))
            continue
        found[name] = dist.version
        # A dependency's marker may name the extras this requirement asked for (or none).
        for dependency in dist.requires or []:
            todo.extend((Requirement(dependency), extra_name) for extra_name in [""] + sorted(requirement.extras))
    print(json.dumps({"missing": sorted(set(missing)), "installed": found}, sort_keys=True))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
