"""Debian 12 test machines with a real systemd, run under systemd-nspawn.

Used by the Molecule scenarios (create/destroy playbooks call `start`/`stop`)
and by the demo. Standard library only; Python 3.11+; must run as root.

    machines.py build [--force]      build the image (no-op when up to date)
    machines.py start NAME [--json]  boot target NAME, wait for sshd, print how to reach it
    machines.py stop NAME | --all    power off and remove every trace of the target(s)
    machines.py list [--json]        running targets
    machines.py info NAME [--json]   how to reach a running target
    machines.py ssh NAME [CMD...]    ssh into a target as the test user
    machines.py answer NAME CIDR [--move]  the target also answers on every address of CIDR (the local
                                     cloud's floating IPs); --move takes CIDR over from another target
    machines.py unanswer CIDR        no target answers on CIDR any more
    machines.py snapshot NAME IMAGE  keep a running target's changes as image IMAGE (derived-*), from which
                                     `start NAME --image IMAGE` boots later targets (the local cloud's snapshots)
    machines.py forget IMAGE | --unused [--keep A,B]  delete a derived image (refused while a target runs on it)
    machines.py key                  the path of the private key every target accepts (made by `build`)

See README.md next to this file for the layout and the reasons behind it.
"""

import argparse
import subprocess
import sys
from pathlib import Path

# The package machinelib/ sits next to this file. Run as a script, this file's folder is sys.path[0] already;
# loaded by path (importlib, as the unit tests do), it is not.
_FOLDER = str(Path(__file__).resolve().parent)
if _FOLDER not in sys.path:
    sys.path.insert(0, _FOLDER)

# pylint: disable=wrong-import-position
from machinelib import common, image, layers, network, state, targets, volumes  # noqa: E402
from machinelib.common import Fail  # noqa: E402


# --------------------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(prog="machines.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build", help="build the image unless it is up to date")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p = sub.add_parser("start", help="boot a target and wait for sshd")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--image", default="base", help="base (the built image, default) or a derived image")
    p.add_argument("--hostname", help="the target's host name (default: NAME)")
    p = sub.add_parser("stop", help="power a target off and remove it")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true")
    p = sub.add_parser("list", help="running targets")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("info", help="how to reach a running target")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("answer", help="the target also answers on every address of CIDR")
    p.add_argument("name")
    p.add_argument("cidr")
    p.add_argument("--move", action="store_true", help="take CIDR over from the target answering on it")
    p = sub.add_parser("unanswer", help="no target answers on CIDR any more")
    p.add_argument("cidr")
    p = sub.add_parser("snapshot", help="keep a running target's changes as a derived image")
    p.add_argument("name")
    p.add_argument("image", help="derived-[a-z0-9-]{1,64}")
    p = sub.add_parser("forget", help="delete a derived image")
    p.add_argument("image", nargs="?")
    p.add_argument("--unused", action="store_true", help="every derived image no target runs on")
    p.add_argument("--keep", default="", help="with --unused: comma-separated derived images to keep anyway")
    p = sub.add_parser("attach", help="give a running target a block device backed by FILE (a local cloud volume)")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("device", help="/dev/vdX (or sdX, xvdX), X in b-z")
    p = sub.add_parser("detach", help="take DEVICE away from the target; its data stays in the file")
    p.add_argument("name")
    p.add_argument("device")
    sub.add_parser("key", help="the path of the private key every target accepts")
    p = sub.add_parser("ssh", help="ssh into a target")
    p.add_argument("name")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)

    try:
        if args.cmd == "build":
            image.build(args.force)
        elif args.cmd == "start":
            targets.start(args.name, args.json, args.image, args.hostname)
        elif args.cmd == "stop":
            if args.all == bool(args.name):
                raise Fail("stop needs either NAME or --all")
            targets.stop_all() if args.all else targets.stop(args.name)
        elif args.cmd == "list":
            targets.list_targets(args.json)
        elif args.cmd == "info":
            targets.emit(state.running_state(args.name), args.json)
        elif args.cmd == "answer":
            network.answer(args.name, args.cidr, args.move)
        elif args.cmd == "unanswer":
            network.unanswer(args.cidr)
        elif args.cmd == "snapshot":
            layers.snapshot(args.name, args.image)
        elif args.cmd == "forget":
            if args.unused == bool(args.image):
                raise Fail("forget needs either IMAGE or --unused")
            if args.unused:
                layers.forget_unused(keep=set(filter(None, args.keep.split(","))))
            else:
                layers.forget(args.image)
        elif args.cmd == "attach":
            volumes.attach(args.name, args.file, args.device)
        elif args.cmd == "detach":
            volumes.detach(args.name, args.device)
        elif args.cmd == "key":
            if not image.key_path().is_file():
                raise Fail(f"no test key in {common.CACHE}; run `machines.py build` first")
            print(image.key_path())
        elif args.cmd == "ssh":
            targets.ssh(args.name, args.command)
    except Fail as e:
        print(f"machines.py: error: {e}", file=sys.stderr)
        return 1
    except (OSError, subprocess.SubprocessError) as e:
        print(f"machines.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("machines.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
