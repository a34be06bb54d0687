"""The parts of machines.py (Debian 12 test machines under systemd-nspawn), one module per concern.

machines.py is the command line; it puts its own folder on sys.path and imports this package:

    common   settings, Fail, log, run, file locks, file writing, mounts, safe_rmtree, name checks
    state    a target's state file, the list of targets, whether one runs
    image    the test key, the image hash, the build of the base image (debootstrap, local apt repository)
    layers   derived images (snapshots of a running target) and the overlay layers an image spec boots on
    network  a target's network namespace and veth pair, its index, and `answer` / `unanswer`
    targets  start, stop and list targets: overlay mount, cgroups, systemd-nspawn, ssh
"""
