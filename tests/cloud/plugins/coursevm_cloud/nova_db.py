"""nova-manage's database steps for a new cloud, in one process.

    python -m coursevm_cloud.nova_db NOVA_CONF CELL0_DB_URL CELL1_DB_URL

The same as `nova-manage api_db sync`, `cell_v2 map_cell0`, `cell_v2 create_cell --name cell1
--transport-url fake://` and `db sync`, through the same code (nova.cmd.manage), without paying
nova's import time four times (seconds each, much more on a busy 2-core machine).
"""

import sys

from nova.cmd import manage  # first: applies nova-manage's own monkey patching

from nova import config  # noqa: E402
from nova import objects  # noqa: E402
from oslo_log import log as logging  # noqa: E402


def main():
    conf_file, cell0_url, cell1_url = sys.argv[1:4]
    config.parse_args(["nova-manage", "--config-file", conf_file])
    logging.setup(manage.CONF, "nova")
    objects.register_all()
    cells = manage.CellV2Commands()
    steps = [
        ("api_db sync", manage.ApiDbCommands().sync, {}),
        ("cell_v2 map_cell0", cells.map_cell0, {"database_connection": cell0_url}),
        # The cell's transport is the in-process fake one, like the rest of this Nova.
        ("cell_v2 create_cell", cells.create_cell,
         {"name": "cell1", "transport_url": "fake://", "database_connection": cell1_url}),
        ("db sync", manage.DbCommands().sync, {}),  # cell1, and cell0 through its mapping
    ]
    for name, step, kwargs in steps:
        print(f"nova-manage {name}", flush=True)
        rc = step(**kwargs)
        if rc not in (None, 0):
            sys.exit(f"nova-manage {name} returned {rc}")


if __name__ == "__main__":
    main()
