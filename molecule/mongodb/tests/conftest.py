"""What the mongodb scenario's checks share: where the controller keeps the scenario's files."""

import os
import subprocess
from pathlib import Path

import yaml

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
SCENARIO = Path(__file__).resolve().parents[1]
# MongoDB's .deb files, when the person running the scenario has them (see molecule.yml).
GIVEN_DEBS = os.environ.get("COURSEVM_MONGODB_DEBS", "")
MONGOD_NOT_STARTED = ("mongod not started: COURSEVM_MONGODB_DEBS names no folder of MongoDB's .deb files "
                      "(Debian and PyPI carry no MongoDB server)")
USER = "oustudent"
ENV_FILE = "/home/oustudent/.config/coursevm/mongodb.env"
PORTS = {"cvm-mongo-repo": 27351, "cvm-mongo-debs": 27017}


def debs_dir():
    return Path(GIVEN_DEBS) if GIVEN_DEBS else EPHEMERAL / "probe" / "debs"


def deb_packages():
    """{file name: package name} of the .deb files the debs route pushed."""
    return {deb.name: subprocess.run(["dpkg-deb", "--field", str(deb), "Package"], capture_output=True, text=True,
                                     check=True).stdout.strip()
            for deb in sorted(debs_dir().glob("*.deb"))}


def passwords(machine):
    record = yaml.safe_load((EPHEMERAL / "secrets" / "mongodb" / (machine + ".yml")).read_text())
    return record["passwords"]
