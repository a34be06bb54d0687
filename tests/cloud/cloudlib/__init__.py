"""The parts of cloud.py (the local OpenStack control plane), one module per concern.

cloud.py is the command line; it puts its own folder on sys.path and imports this package:

    common     settings, Fail, log, run, the lock, hashing of inputs, ports and HTTP probes
    processes  processes started by cloud.py: pid files, spawn, stop, process groups, memory
    install    MariaDB and the tools from apt, the OpenStack venv and our plug-ins from PyPI
    config     the services' configuration files, cloud.json for bootstrap.py, clouds.yaml, the state stamp
    services   MariaDB and the OpenStack services: datadir, databases, migrations, uwsgi, bootstrap.py
    lifecycle  the cloud as a whole: cold start, baseline save and restore, stop of everything
"""
