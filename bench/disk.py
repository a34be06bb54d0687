"""bench/disk: the disk pipeline, a sparse VMDK to a compact qcow2 in Glance, measured side by side in one run.

    ./coursevm setup && .venv/bin/python bench/disk.py [--virtual-gb 64] [--written-gb 2] [--repeat 3] [--markdown]

Needs qemu-img (Debian qemu-utils) and the local cloud running (`python3 tests/cloud/cloud.py start`, as root).
The source is made here: a sparse raw disk of --virtual-gb GiB with --written-gb GiB of data in 1 MiB pieces at
scattered offsets (each half random, half text: about as compressible as a real disk), converted to a
monolithicSparse VMDK (qemu-img's default; VMware's) and, unless --no-stream, a streamOptimized one (what
VirtualBox exports). Measured, alternating and repeated:
  - A: a bare `qemu-img convert -p -f vmdk -O qcow2` (the argv disk_image runs on this source: compress: auto,
    the default here and in the course_image role, does not compress a monolithicSparse VMDK);
  - B: `ansible localhost -m coursevm.openstack.disk_image` with the same source and no options, as a user
    runs it: the wall time of the whole ad hoc call, Ansible's start included (and shown apart, from an ad hoc
    ping);
then, once each, the streamOptimized source through disk_image (compress: auto compresses it, `-c`) and through
a bare `qemu-img convert -p -c` (the same argv). Both qcow2 disk_image made are uploaded by `ansible localhost -m
coursevm.openstack.image_upload` (as bench-disk-<pid> and bench-disk-<pid>-stream), their sizes read back from
Glance and compared with the bytes each source VMDK has allocated (st_blocks * 512). The progress files are
sampled every 0.1 s: disk_image's (DEST.progress) while it converts, image_upload's (its progress_file) while it
uploads. The work folder and the images are removed at the end, failed or not. Targets (issue 15): B <= 1.1x A;
bytes to Glance <= 1.05x allocated; long conversions and uploads show progress while they run.
Not part of CI (about 6 minutes with the defaults); bench/README.md keeps the last table.
"""

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import openstack  # the venv's
from benchtable import print_table  # bench/benchtable.py
from cohort import CLOUD, ROOT, VENV, env  # bench/cohort.py: the controller's venv, collections and clouds.yaml

GIB = 1024 ** 3
MIB = 1024 ** 2
CONVERT = ["qemu-img", "convert", "-p", "-f", "vmdk", "-O", "qcow2"]  # disk_image's argv (qemu_convert)


def run(args):
    """A program's stdout; its failure ends the benchmark with its stderr."""
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(str(a) for a in args), proc.stderr.strip()[-1000:]))
    return proc.stdout


def make_sources(folder, virtual, written, stream):
    """{subformat: vmdk path}: 1 MiB pieces, half random and half text, at scattered whole-MiB offsets."""
    pieces = written // MIB
    if pieces > virtual // MIB:
        sys.exit("--written-gb must not exceed --virtual-gb")
    raw = folder / "source.raw"
    text = (b"course notebook data 0123456789 " * (MIB // 64))[:MIB // 2]
    with open(raw, "wb") as handle:
        handle.truncate(virtual)
        for offset in sorted(random.Random(15).sample(range(virtual // MIB), pieces)):
            handle.seek(offset * MIB)
            handle.write(os.urandom(MIB // 2) + text)
    sources = {"monolithicSparse": folder / "source-sparse.vmdk"}
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicSparse", raw,
         sources["monolithicSparse"]])
    raw.unlink()
    if stream:
        sources["streamOptimized"] = folder / "source-stream.vmdk"
        run(["qemu-img", "convert", "-f", "vmdk", "-O", "vmdk", "-o", "subformat=streamOptimized",
             sources["monolithicSparse"], sources["streamOptimized"]])
    return sources


def allocated(path):
    """Bytes the file occupies on disk (what a sparse or compressed source really holds)."""
    return os.stat(path).st_blocks * 512


class Watch(threading.Thread):
    """Every distinct text a progress file shows while something runs, sampled every 0.1 s."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.seen, self.done = Path(path), [], threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            try:
                text = self.path.read_text(encoding="ascii", errors="replace").strip()
            except OSError:
                continue
            if text and (not self.seen or self.seen[-1] != text):
                self.seen.append(text)


class Bench:
    """The work folder, the environment in which `ansible` finds this checkout, and a connection to the cloud."""

    def __init__(self, folder):
        self.folder = folder
        self.env = dict(env(), ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                        ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
        os.environ["OS_CLIENT_CONFIG_FILE"] = self.env["OS_CLIENT_CONFIG_FILE"]
        if not os.path.exists(self.env["OS_CLIENT_CONFIG_FILE"]):
            sys.exit("no clouds.yaml at %s: start the local cloud first (python3 tests/cloud/cloud.py start)"
                     % self.env["OS_CLIENT_CONFIG_FILE"])
        try:
            self.conn = openstack.connect(cloud=CLOUD)
            self.conn.authorize()
        except openstack.exceptions.SDKException as exc:
            sys.exit("the local cloud %s does not answer (python3 tests/cloud/cloud.py status): %s" % (CLOUD, exc))

    def ansible(self, module, args):
        """(wall seconds, result) of `ansible localhost -m MODULE -a ARGS`, the venv's Python as interpreter."""
        cmd = [VENV / "ansible", "localhost", "-m", module, "-e", "ansible_python_interpreter=%s" % (VENV / "python")]
        cmd += ["-a", json.dumps(args)] if args else []
        start = time.monotonic()
        proc = subprocess.run([str(c) for c in cmd], env=self.env, capture_output=True, text=True, cwd=ROOT,
                              check=False)
        seconds = time.monotonic() - start
        try:
            result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            sys.exit("%s gave no result (exit %d):\n%s\n%s" % (module, proc.returncode, proc.stdout[-3000:],
                                                               proc.stderr[-3000:]))
        if result.get("failed") or proc.returncode != 0:
            sys.exit("%s failed: %s" % (module, result.get("msg", result)))
        return seconds, result

    def bare(self, src, out, *options):
        """Seconds of a bare qemu-img convert with disk_image's argv (plus options)."""
        out.unlink(missing_ok=True)
        os.sync()  # the previous run's dirty pages are not this run's cost
        start = time.monotonic()
        run(CONVERT + list(options) + [src, out])
        return time.monotonic() - start

    def module(self, src, out):
        """(seconds, result, progress texts seen) of disk_image converting src to out."""
        for path in (out, Path(str(out) + ".sha256"), Path(str(out) + ".json")):
            path.unlink(missing_ok=True)
        os.sync()
        watch = Watch(str(out) + ".progress")
        watch.start()
        try:
            seconds, result = self.ansible("coursevm.openstack.disk_image", {"src": str(src), "dest": str(out)})
        finally:
            watch.done.set()
            watch.join()
        return seconds, result, watch.seen

    def upload(self, name, qcow2, made):
        """(seconds, the Glance image, progress texts seen) of image_upload, given disk_image's checksum and
        min_disk as the role does, with a progress_file in the work folder."""
        progress = self.folder / ("%s.upload.progress" % name)
        watch = Watch(progress)
        watch.start()
        try:
            seconds, result = self.ansible("coursevm.openstack.image_upload", {
                "cloud": CLOUD, "name": name, "filename": str(qcow2), "checksum": made["dest"]["sha256"],
                "min_disk": made["dest"]["min_disk"], "progress_file": str(progress)})
        finally:
            watch.done.set()
            watch.join()
        if not result.get("uploaded"):
            sys.exit("image_upload sent nothing for %s (an image with its checksum already there?): %s" % (name, result))
        return seconds, self.conn.image.get_image(result["image"]["id"]), watch.seen

    def delete_images(self, name):
        """Every image of this project with the name, also one a failed upload left."""
        for image in self.conn.image.images(name=name, owner=self.conn.current_project_id):
            self.conn.image.delete_image(image, ignore_missing=True)


def hash_seconds(*paths):
    """Seconds to SHA-256 the files as disk_image does (hashlib, 4 MiB reads): its source and its output."""
    start = time.monotonic()
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(4 * MIB), b""):
                digest.update(block)
    return time.monotonic() - start


def verdict(ok):
    """The table's last column."""
    return "met" if ok else "MISSED"


def convert_runs(bench, src, repeat):
    """A and B alternating, each run after a sync, with an ad hoc ping beside them for Ansible's own start."""
    out_a, out_b = bench.folder / "bare.qcow2", bench.folder / "module.qcow2"
    bench.bare(src, out_a)  # warm-up, not timed: the source in the page cache for A and B alike
    runs = {"a": [], "b": [], "inner": [], "ping": []}
    facts = {"progress": []}
    for i in range(repeat):
        runs["ping"].append(bench.ansible("ansible.builtin.ping", {})[0])
        runs["a"].append(bench.bare(src, out_a))
        seconds, facts["made"], seen = bench.module(src, out_b)
        runs["b"].append(seconds)
        runs["inner"].append(facts["made"]["seconds"])
        facts["progress"] = max(facts["progress"], seen, key=len)
        print("  run %d: bare %.1f s, disk_image %.1f s (module's seconds %.1f), ping %.1f s, %d progress values"
              % (i + 1, runs["a"][-1], seconds, runs["inner"][-1], runs["ping"][-1], len(seen)), flush=True)
    out_a.unlink()
    facts.update((key, statistics.median(values)) for key, values in runs.items())
    facts["hashing"] = hash_seconds(src, out_b)
    facts["qcow2"] = out_b
    return facts


def stream_runs(bench, src):
    """The streamOptimized source once each: disk_image (compress: auto compresses it) and a bare convert with -c,
    the argv it then runs. disk_image's qcow2 stays for the upload."""
    hash_seconds(src)  # warm-up, not timed: the source in the page cache for both
    out, bare = bench.folder / "stream.qcow2", bench.folder / "stream-bare.qcow2"
    facts = {"compressed_s": bench.bare(src, bare, "-c")}
    facts["compressed"] = os.path.getsize(bare)
    bare.unlink()
    facts["stream_b"], facts["stream_made"] = bench.module(src, out)[:2]
    facts["stream_qcow2"] = out
    print("  streamOptimized: bare with -c %.1f s, disk_image %.1f s (compressed: %s)" % (
        facts["compressed_s"], facts["stream_b"], facts["stream_made"].get("compressed")), flush=True)
    return facts


def measure(args, folder):
    """Every figure of the table, in one run."""
    bench = Bench(folder)
    start = time.monotonic()
    sources = make_sources(folder, int(args.virtual_gb * GIB), int(args.written_gb * GIB), not args.no_stream)
    facts = {"allocated": dict((kind, allocated(path)) for kind, path in sources.items())}
    print("  sources made in %.0f s: %s" % (time.monotonic() - start, ", ".join(
        "%s %.2f GiB allocated" % (kind, size / GIB) for kind, size in facts["allocated"].items())), flush=True)
    facts.update(convert_runs(bench, sources["monolithicSparse"], args.repeat))
    if "streamOptimized" in sources:
        facts.update(stream_runs(bench, sources["streamOptimized"]))
    name = "bench-disk-%d" % os.getpid()
    try:
        facts["upload"], image, facts["upload_progress"] = bench.upload(name, facts["qcow2"], facts["made"])
        facts["glance"] = image.size
        print("  uploaded %s: %d bytes in Glance, %.0f s, %d progress values" % (
            name, image.size, facts["upload"], len(facts["upload_progress"])), flush=True)
        if "stream_qcow2" in facts:
            seconds, image, seen = bench.upload(name + "-stream", facts["stream_qcow2"], facts["stream_made"])
            facts["glance_stream"] = image.size
            print("  uploaded %s-stream: %d bytes in Glance, %.0f s, %d progress values" % (
                name, image.size, seconds, len(seen)), flush=True)
    finally:
        bench.delete_images(name)
        bench.delete_images(name + "-stream")
    return facts


def rows(args, f):
    """(measure, value, target, met/MISSED) for the table."""
    sparse = f["allocated"]["monolithicSparse"]
    ratio, glance = f["b"] / f["a"], f["glance"] / sparse
    table = [
        ("source: %g GiB virtual, %g GiB written" % (args.virtual_gb, args.written_gb),
         "monolithicSparse VMDK, %.2f GiB allocated" % (sparse / GIB), "", ""),
        ("A: bare `%s` (median of %d)" % (" ".join(CONVERT), args.repeat), "%.1f s" % f["a"], "", ""),
        ("B: `ansible localhost -m coursevm.openstack.disk_image` (median of %d)" % args.repeat,
         "%.1f s (module's own `seconds` %.1f)" % (f["b"], f["inner"]), "", ""),
        ("disk_image / bare qemu-img", "%.2fx" % ratio, "<= 1.1x", verdict(ratio <= 1.1)),
        ("B's parts measured apart: Ansible's start (ad hoc ping); SHA-256 of source + output",
         "%.1f s; %.1f s" % (f["ping"], f["hashing"]), "", ""),
    ]
    if "stream_b" in f:
        stream = f["stream_b"] / f["compressed_s"]
        table.append(("streamOptimized source: disk_image (compress: auto, compressed: %s) / bare `qemu-img convert "
                      "-p -c` (1 run each)" % ("yes" if f["stream_made"].get("compressed") else "no"),
                      "%.2fx (%.1f s / %.1f s)" % (stream, f["stream_b"], f["compressed_s"]), "<= 1.1x",
                      verdict(stream <= 1.1)))
    table.append(("bytes to Glance / allocated, monolithicSparse", "%.3fx (%.2f GiB / %.2f GiB)"
                  % (glance, f["glance"] / GIB, sparse / GIB), "<= 1.05x", verdict(glance <= 1.05)))
    if "stream_b" in f:
        packed = f["allocated"]["streamOptimized"]
        sent = f["glance_stream"]
        table.append(("bytes to Glance / allocated, streamOptimized (disk_image's qcow2, uploaded)",
                      "%.3fx (%.2f GiB / %.2f GiB; bare `-c`: %.2f GiB)" % (
                          sent / packed, sent / GIB, packed / GIB, f["compressed"] / GIB),
                      "<= 1.05x", verdict(sent / packed <= 1.05)))
    seen, sent = f["progress"], f["upload_progress"]
    table += [
        ("image_upload, %.2f GiB to the local Glance" % (f["glance"] / GIB),
         "%.0f s (%.0f MiB/s)" % (f["upload"], f["glance"] / MIB / f["upload"]), "", ""),
        ("disk_image progress while converting (DEST.progress, sampled every 0.1 s)", "%d distinct values (%s)"
         % (len(seen), " ... ".join(seen[:1] + seen[-1:]) if seen else "none seen"), "shown", verdict(len(seen) > 1)),
        ("image_upload progress while uploading (progress_file, sampled every 0.1 s)", "%d distinct values (%s)"
         % (len(sent), " ... ".join(sent[:1] + sent[-1:]) if sent else "none seen"), "shown", verdict(len(sent) > 1)),
    ]
    return table


def main():
    """Check the tools and the room, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--virtual-gb", type=float, default=64, help="the source's virtual size in GiB")
    parser.add_argument("--written-gb", type=float, default=2, help="GiB of data written into it")
    parser.add_argument("--repeat", type=int, default=3, help="A and B runs, alternating")
    parser.add_argument("--no-stream", action="store_true", help="leave out the streamOptimized source")
    parser.add_argument("--workdir", default="/var/tmp", help="where the work folder goes (needs ~4x written)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (bench/README.md)")
    args = parser.parse_args()
    if not shutil.which("qemu-img"):
        sys.exit("qemu-img is not installed (Debian package qemu-utils)")
    need = 5 * args.written_gb * GIB + GIB
    if shutil.disk_usage(args.workdir).free < need:
        sys.exit("%s has less than %.0f GiB free; give --workdir elsewhere" % (args.workdir, need / GIB))
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    with open("/proc/meminfo", encoding="ascii") as handle:
        memory = int(handle.readline().split()[1]) * 1024
    print("bench/disk: %g GiB virtual, %g GiB written; %s, %d cores, %.0f GiB, %s; load %s; commit %s; %s" % (
        args.virtual_gb, args.written_gb, platform.node(), os.cpu_count(), memory / GIB, platform.platform(terse=True),
        " ".join("%.1f" % x for x in os.getloadavg()), commit, time.strftime("%Y-%m-%d %H:%M")), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-disk-", dir=args.workdir) as tmp:
        facts = measure(args, Path(tmp))
    print("  load at the end: %s" % " ".join("%.1f" % x for x in os.getloadavg()), flush=True)
    print_table(("measure", "value", "target", ""), rows(args, facts), args.markdown, widths=(84, 58, 9, 6))


if __name__ == "__main__":
    main()
