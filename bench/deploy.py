"""bench/deploy: deploying a cohort from the golden image vs configuring every VM from scratch, in one run.

    ./coursevm setup && .venv/bin/python bench/deploy.py [--students 3] [--markdown]

Needs root and the local cloud running (`python3 tests/cloud/cloud.py start`): every server of the local cloud's
course-vm image (and of its snapshots) runs on a real machine of tests/machines, so each deploy really installs
and configures. Measured side by side in this run, each on a course of its own (removed first and after):
  - deploy.yml of N students from the ordinary image (course-vm): each VM configured from scratch;
  - golden_image.yml: the golden image made once (reported, not part of a target);
  - deploy.yml of 1 student and of N students from that golden image: each VM only personalised.
Targets (issue 12): golden deploy of N <= 1.5x golden deploy of 1, and <= 1/3 of the from-scratch deploy of N.
Not part of CI (about 15 minutes); bench/README.md keeps the last table.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv" / "bin"
MACHINES = ["/usr/bin/python3", str(ROOT / "tests" / "machines" / "machines.py")]
sys.path.insert(0, str(ROOT / "tests" / "cloud_integration"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

import openstack  # noqa: E402  (the venv's)
import cohort_support  # noqa: E402
from benchtable import print_table  # noqa: E402  # pylint: disable=wrong-import-position
from cohort import env  # noqa: E402  (bench/cohort.py: the controller's venv, collections and clouds.yaml)


class Bench:
    def __init__(self, folder):
        self.folder = folder
        self.env = env()
        os.environ["OS_CLIENT_CONFIG_FILE"] = self.env["OS_CLIENT_CONFIG_FILE"]
        self.conn = openstack.connect(cloud="coursevm-local")
        self.key = subprocess.run([*MACHINES, "key"], capture_output=True, text=True, check=True).stdout.strip()
        (folder / "keys.json").write_text(json.dumps({
            "cohort_admin_public_keys": [Path(self.key + ".pub").read_text().strip()],
            "cohort_admin_private_key_file": self.key}))

    def playbook(self, name, course, *extra):
        cmd = [str(VENV / "ansible-playbook"), "-i", str(ROOT / "inventory" / "local"), str(ROOT / "playbooks" / name),
               "-e", "cohort_course=" + course, "-e", "@" + str(self.folder / "keys.json"),
               "-e", "credentials_secrets_dir=" + str(self.folder / ("secrets-" + course))]
        for item in extra:
            cmd += ["-e", item]
        start = time.monotonic()
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            sys.exit("%s for %s failed:\n%s\n%s" % (name, course, proc.stdout[-4000:], proc.stderr[-2000:]))
        return time.monotonic() - start

    def roster(self, course, count):
        path = self.folder / ("%s.csv" % course)
        path.write_text("student_id,name,email\n" + "".join(
            "s%03d,Student %d,s%03d@example.edu\n" % (i, i, i) for i in range(1, count + 1)))
        return "cohort_roster=%s" % path

    def deploy(self, course, count, image=None):
        """deploy.yml's wall time, then the course removed (golden images of the course too)."""
        cohort_support.remove_course(self.conn, course + "-")
        extra = [self.roster(course, count)] + (["cohort_image=" + image] if image else [])
        seconds = self.playbook("deploy.yml", course, *extra)
        self.playbook("teardown.yml", course, "teardown_whole_course=true", "teardown_golden_images=true")
        return seconds

    def golden(self, course):
        record = self.folder / "golden.yml"
        seconds = self.playbook("golden_image.yml", course, "golden_image_record_file=" + str(record))
        name = [line.split(":", 1)[1].strip() for line in record.read_text().splitlines() if line.startswith("name:")]
        return seconds, name[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (bench/README.md)")
    args = parser.parse_args()
    n = args.students
    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(Path(tmp))
        print("bench/deploy: %d students on the local cloud, %s, %d cores" % (n, platform.node(), os.cpu_count()),
              flush=True)
        scratch = b.deploy("benchscratch", n)
        print("  from scratch, %d students: %.0f s" % (n, scratch), flush=True)
        cohort_support.remove_course(b.conn, "benchgold-")
        build, image = b.golden("benchgold")
        print("  golden image %s made in %.0f s" % (image, build), flush=True)
        one = b.deploy("benchg1", 1, image)
        print("  from the golden image, 1 student: %.0f s" % one, flush=True)
        many = b.deploy("benchgn", n, image)
        print("  from the golden image, %d students: %.0f s" % (n, many), flush=True)
        b.playbook("teardown.yml", "benchgold", "teardown_whole_course=true", "teardown_golden_images=true")

    rows = [
        ("deploy.yml, %d from scratch (course-vm)" % n, "%.0f s (%.0f s per VM)" % (scratch, scratch / n), "", ""),
        ("golden_image.yml (once per image)", "%.0f s" % build, "", ""),
        ("deploy.yml, 1 from the golden image", "%.0f s" % one, "", ""),
        ("deploy.yml, %d from the golden image" % n, "%.0f s (%.0f s per VM)" % (many, many / n), "", ""),
        ("golden %d / golden 1" % n, "%.2fx" % (many / one), "<= 1.5x", "met" if many / one <= 1.5 else "MISSED"),
        ("golden %d / scratch %d" % (n, n), "%.2fx" % (many / scratch), "<= 0.33x",
         "met" if many / scratch <= 1 / 3 else "MISSED"),
    ]
    print_table(("measured", "value", "target", ""), rows, args.markdown, widths=(42, 26, 9, 6))


if __name__ == "__main__":
    main()
