"""disk_image run in-process on small real files made by qemu-img and tarfile (no Ansible controller involved).

(Named *_module so it does not clash with tests/integration/test_disk_image.py in one pytest session.)
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.coursevm.openstack.plugins.module_utils import disk
from ansible_collections.coursevm.openstack.plugins.modules import disk_image

pytestmark = pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img (qemu-utils) is not installed")


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            disk_image.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = exited.value.code
    return result


def qemu_img(*args):
    subprocess.run(["qemu-img"] + list(args), check=True, capture_output=True)


@pytest.fixture
def qcow2(tmp_path):
    path = tmp_path / "small.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(path), "10M")
    return path


def fingerprint(path):
    stat = os.stat(path)
    with open(path, "rb") as handle:
        return stat.st_mtime_ns, stat.st_size, handle.read()


def test_inspect_reports_format_sizes_and_changes_nothing(capsys, qcow2):
    before = sorted(os.listdir(qcow2.parent))
    result = run_module(capsys, src=str(qcow2))
    assert result["rc"] == 0 and result["changed"] is False
    src = result["source"]
    assert (src["format"], src["virtual_size"], src["min_disk"]) == ("qcow2", 10 * 1024 ** 2, 1)
    assert 0 < src["allocated_bytes"] < 10 * 1024 ** 2
    assert sorted(os.listdir(qcow2.parent)) == before


def test_convert_writes_checksum_and_sidecar_then_is_idempotent(capsys, qcow2, tmp_path):
    dest = tmp_path / "out.raw"
    first = run_module(capsys, src=str(qcow2), dest=str(dest), format="raw")
    assert first["changed"] is True, first
    assert first["dest"]["format"] == "raw" and first["dest"]["virtual_size"] == 10 * 1024 ** 2
    line = (tmp_path / "out.raw.sha256").read_text()
    assert line == "%s  out.raw\n" % first["dest"]["sha256"]
    sidecar = json.loads((tmp_path / "out.raw.json").read_text())
    assert sidecar["source_sha256"] == first["source"]["sha256"]
    assert not [n for n in os.listdir(tmp_path) if ".work-" in n or n.endswith(".progress")]

    second = run_module(capsys, src=str(qcow2), dest=str(dest), format="raw")
    assert second["changed"] is False and "is up to date" in second["reason"]
    assert second["dest"]["sha256"] == first["dest"]["sha256"]

    # Other options, or force, make a new output.
    assert run_module(capsys, src=str(qcow2), dest=str(dest), format="qcow2")["changed"] is True
    assert run_module(capsys, src=str(qcow2), dest=str(dest), format="qcow2", force=True)["changed"] is True


def test_a_changed_source_is_converted_again(capsys, qcow2, tmp_path):
    dest = tmp_path / "out.qcow2"
    run_module(capsys, src=str(qcow2), dest=str(dest))
    qemu_img("resize", "-q", str(qcow2), "12M")
    result = run_module(capsys, src=str(qcow2), dest=str(dest))
    assert result["changed"] is True and result["dest"]["virtual_size"] == 12 * 1024 ** 2


def test_check_mode_writes_nothing(capsys, qcow2, tmp_path):
    dest = tmp_path / "out.qcow2"
    result = run_module(capsys, src=str(qcow2), dest=str(dest), _ansible_check_mode=True)
    assert result["changed"] is True
    assert sorted(os.listdir(tmp_path)) == ["small.qcow2"]


def test_backing_chain_is_refused_and_the_overlay_untouched(capsys, qcow2, tmp_path):
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(qcow2), "-F", "qcow2", str(overlay))
    before = fingerprint(overlay)
    result = run_module(capsys, src=str(overlay), dest=str(tmp_path / "flat.qcow2"))
    assert result["rc"] == 1 and "a disk with a backing chain is refused" in result["msg"]
    assert str(qcow2) in result["msg"]
    assert fingerprint(overlay) == before and not (tmp_path / "flat.qcow2").exists()


def test_unsupported_format_is_refused(capsys, tmp_path):
    qed = tmp_path / "old.qed"
    qemu_img("create", "-q", "-f", "qed", str(qed), "10M")
    result = run_module(capsys, src=str(qed), dest=str(tmp_path / "out.qcow2"))
    assert result["rc"] == 1 and "format 'qed', which is not supported" in result["msg"]


def test_text_file_is_not_a_disk(capsys, tmp_path):
    notes = tmp_path / "notes.vmdk"
    notes.write_text("these are my notes, not a disk\n" * 50)
    result = run_module(capsys, src=str(notes), dest=str(tmp_path / "out.qcow2"))
    assert result["rc"] == 1 and "is not a disk image" in result["msg"]
    assert notes.read_text().startswith("these are my notes")


@pytest.mark.parametrize("args, message", [
    ({"src": "/nonexistent/course.vdi"}, "source /nonexistent/course.vdi does not exist"),
    ({"dest": "{tmp}/missing/out.qcow2"}, "output folder {tmp}/missing does not exist"),
    ({"dest": "{tmp}/small.qcow2"}, "dest is the source itself"),
    ({"dest": "/sys/kernel/t6-out.qcow2"}, "output folder /sys/kernel cannot be written: Permission denied"),
    ({"dest": "{tmp}"}, "is a folder; give the output file's path"),
    ({"dest": "{tmp}/o.raw", "format": "raw", "compress": True}, "compress: true needs format: qcow2"),
    ({"dest": "{tmp}/o.qcow2", "shrink_to": "lots"}, "size 'lots' is not understood"),
    ({"dest": "{tmp}/o.qcow2", "tool": "vboxmanage"}, "VBoxManage is not installed"),
])
def test_bad_input_fails_with_a_clear_message(capsys, qcow2, tmp_path, args, message):
    full = {"src": str(qcow2)}
    full.update(dict((k, v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in args.items()))
    if args.get("tool") == "vboxmanage" and shutil.which("VBoxManage"):
        pytest.skip("VBoxManage is installed here")
    before = fingerprint(qcow2)
    result = run_module(capsys, **full)
    assert result["rc"] == 1 and message.format(tmp=tmp_path) in result["msg"], result
    assert fingerprint(qcow2) == before


def test_progress_of_a_real_conversion_is_reported_and_the_file_removed(capsys, tmp_path, monkeypatch):
    """qemu-img convert -p's real output is parsed: rising percentages ending at 100, in the progress file."""
    src = tmp_path / "data.raw"
    with open(src, "wb") as handle:  # 64 MiB with data spread out, so qemu-img reports many steps
        for i in range(64):
            handle.seek(i * 1024 ** 2)
            handle.write(os.urandom(4096))
    seen = []
    write = disk_image.Converter.write_progress

    def record(self, text):
        write(self, text)
        with open(self.progress_file) as handle:
            seen.append(handle.read().strip())

    monkeypatch.setattr(disk_image.Converter, "write_progress", record)
    result = run_module(capsys, src=str(src), src_format="raw", dest=str(tmp_path / "out.qcow2"))
    assert result["changed"] is True, result
    percents = [float(line.split(": ")[1].rstrip("%")) for line in seen]
    assert len(percents) >= 2 and percents == sorted(percents) and percents[-1] == 100.0
    assert all(line.startswith("converting: ") for line in seen)
    assert not (tmp_path / "out.qcow2.progress").exists()


def make_box(tmp_path, compress=True):
    """A small real Vagrant box: a streamOptimized VMDK made from a raw disk with data in it, a box.ovf,
    metadata.json and a Vagrantfile, tar'ed (and gzipped) with names starting './' as bsdtar writes them."""
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as handle:
        for i in range(8):
            handle.seek(i * 1024 ** 2)
            handle.write(os.urandom(4096))
        handle.truncate(8 * 1024 ** 2)
    vmdk = tmp_path / "box-disk001.vmdk"
    qemu_img("convert", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw), str(vmdk))
    ovf = ('<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" '
           'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References>'
           '<File ovf:href="box-disk001.vmdk" ovf:id="file1"/></References></Envelope>').encode()
    box = tmp_path / ("course.box" if compress else "plain.box")
    with tarfile.open(str(box), "w:gz" if compress else "w") as tar:
        for name, data in (("./metadata.json", b'{"provider": "virtualbox"}'), ("./Vagrantfile", b"# box\n"),
                           ("./box.ovf", ovf)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(str(vmdk), "./box-disk001.vmdk")
    vmdk.unlink()
    return box, raw


def spy_mkdtemp(monkeypatch):
    made = []
    mkdtemp = tempfile.mkdtemp

    def recording(*args, **kwargs):
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    return made


def test_gzipped_box_is_streamed_out_converted_and_cleaned_up(capsys, tmp_path, monkeypatch):
    box, raw = make_box(tmp_path)
    before = fingerprint(box)
    made = spy_mkdtemp(monkeypatch)
    seen = []
    write = disk_image.Converter.write_progress

    def record(self, text):
        write(self, text)
        seen.append(text)

    monkeypatch.setattr(disk_image.Converter, "write_progress", record)
    dest = tmp_path / "out" / "course.qcow2"
    dest.parent.mkdir()
    result = run_module(capsys, src=str(box), dest=str(dest))
    assert result["changed"] is True, result
    assert result["source"]["archive"] == {"type": "box", "member": "box-disk001.vmdk", "compression": "gzip",
                                           "provider": "virtualbox"}
    qemu_img("compare", "-f", "raw", "-F", "qcow2", str(raw), str(dest))
    # The disk went to a work folder next to dest (never next to the box), which is gone.
    assert len(made) == 1 and os.path.dirname(made[0]) == str(dest.parent) and not os.path.exists(made[0])
    assert sorted(os.listdir(dest.parent)) == ["course.qcow2", "course.qcow2.json", "course.qcow2.sha256"]
    assert seen[0].startswith("taking box-disk001.vmdk out of course.box: ") and seen[-1] == "converting: 100.0%"
    assert fingerprint(box) == before
    again = run_module(capsys, src=str(box), dest=str(dest))
    assert again["changed"] is False and "is up to date" in again["reason"]
    assert sorted(os.listdir(dest.parent)) == ["course.qcow2", "course.qcow2.json", "course.qcow2.sha256"]


def test_plain_box_is_read_in_place_without_a_copy(capsys, tmp_path, monkeypatch):
    box, raw = make_box(tmp_path, compress=False)
    made = spy_mkdtemp(monkeypatch)
    inspected = run_module(capsys, src=str(box))
    assert inspected["changed"] is False and inspected["source"]["format"] == "vmdk"
    assert inspected["source"]["virtual_size"] == 8 * 1024 ** 2 and made == []
    result = run_module(capsys, src=str(box), dest=str(tmp_path / "plain.qcow2"))
    assert result["changed"] is True and result["source"]["archive"]["compression"] == ""
    qemu_img("compare", "-f", "raw", "-F", "qcow2", str(raw), str(tmp_path / "plain.qcow2"))


def test_inspecting_a_gzipped_box_uses_a_temporary_folder_and_removes_it(capsys, tmp_path, monkeypatch):
    box, unused = make_box(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    made = spy_mkdtemp(monkeypatch)
    result = run_module(capsys, src=str(box))
    assert result["rc"] == 0 and result["changed"] is False
    assert result["source"]["virtual_size"] == 8 * 1024 ** 2
    assert len(made) == 1 and os.path.dirname(made[0]) == str(scratch) and os.listdir(str(scratch)) == []


def test_a_failed_conversion_of_a_box_leaves_nothing_behind(capsys, tmp_path, monkeypatch):
    box, unused = make_box(tmp_path)
    before = fingerprint(box)
    made = spy_mkdtemp(monkeypatch)

    def fail(self, *args):
        assert os.listdir(made[0]) == ["archive-disk.vmdk"]  # the disk was streamed out before converting
        raise disk.DiskError("qemu-img convert failed: no space left on device")

    monkeypatch.setattr(disk_image.Converter, "qemu_convert", fail)
    out = tmp_path / "out"
    out.mkdir()
    result = run_module(capsys, src=str(box), dest=str(out / "course.qcow2"))
    assert result["rc"] == 1 and "no space left" in result["msg"]
    assert os.listdir(str(out)) == [] and fingerprint(box) == before


def _aliases_of(src, suffix):
    """Other names (ending in ``suffix``) for the file ``src``, keyed by how they reach it."""
    folder = src.parent
    (folder / "sub").mkdir()
    link = folder / ("link-to-source" + suffix)
    link.symlink_to(src)
    hard = folder / ("hard-link-to-source" + suffix)
    os.link(str(src), str(hard))
    return {"same": str(src), "symlink": str(link), "dotdot": str(folder / "sub" / ".." / src.name),
            "hardlink": str(hard)}


# Every path the module writes, renames or removes, expressed as the args that would make it land on ``alias``.
WRITES = {
    "dest": lambda alias, tmp: {"dest": alias},
    "progress_file": lambda alias, tmp: {"dest": str(tmp / "out.qcow2"), "progress_file": alias},
    "progress_file without dest": lambda alias, tmp: {"progress_file": alias},
    "progress_file's temporary": lambda alias, tmp: {"dest": str(tmp / "out.qcow2"),
                                                     "progress_file": alias[:-len(".tmp")]},
    "default progress_file": lambda alias, tmp: {"dest": alias[:-len(".progress")]},
    "checksum file": lambda alias, tmp: {"dest": alias[:-len(".sha256")]},
    "sidecar": lambda alias, tmp: {"dest": alias[:-len(".json")]},
}
SUFFIX = {"progress_file's temporary": ".tmp", "default progress_file": ".progress", "checksum file": ".sha256",
          "sidecar": ".json"}


@pytest.mark.parametrize("how", ["same", "symlink", "dotdot", "hardlink"])
@pytest.mark.parametrize("written", sorted(WRITES))
def test_no_path_the_module_writes_may_be_the_source(capsys, tmp_path, written, how):
    """The source is only ever read: a dest, progress file, checksum, sidecar or temporary name that is (or
    reaches) the source fails the run before anything is written, and the source keeps every byte."""
    suffix = SUFFIX.get(written, "")
    src = tmp_path / ("course.qcow2" + suffix)
    qemu_img("create", "-q", "-f", "qcow2", str(src), "10M")
    alias = _aliases_of(src, suffix)[how]
    args = WRITES[written](alias, tmp_path)
    before = fingerprint(src)
    listing = sorted(os.listdir(tmp_path))
    result = run_module(capsys, src=str(src), **args)
    assert result["rc"] == 1 and result.get("failed") is True, result
    assert fingerprint(src) == before
    assert sorted(os.listdir(tmp_path)) == listing  # nothing made, nothing removed


class _QuietModule:
    def __init__(self, **params):
        self.params = dict({"src": None, "dest": None, "progress_file": None}, **params)

    def log(self, msg):
        pass


@pytest.mark.parametrize("exit_code", [0, 3])
def test_qemu_img_writing_much_to_stderr_does_not_hang_the_conversion(tmp_path, monkeypatch, exit_code):
    """A qemu-img that fills its stderr pipe (1 MiB of warnings) before it finishes its progress output must not
    block the module reading stdout. A watchdog kills the stand-in after 20 s so a hang fails the test."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "qemu-img.pid"
    fake = bin_dir / "qemu-img"
    fake.write_text("#!%s\n" % sys.executable + textwrap.dedent("""\
        import os, sys
        open(%r, "w").write(str(os.getpid()))
        sys.stderr.write("warning " * 128 * 1024)
        sys.stderr.flush()
        for percent in (50, 100):
            sys.stdout.write("    (%%d.00/100%%%%)\\r" %% percent)
            sys.stdout.flush()
        sys.exit(%d)
        """) % (str(pid_file), exit_code))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    progress = tmp_path / "out.progress"
    converter = disk_image.Converter(_QuietModule(src=str(tmp_path / "in.raw"), progress_file=str(progress)))
    seen = []
    write = converter.write_progress
    converter.write_progress = lambda text: (seen.append(text), write(text))
    hung = []

    def watchdog():
        if pid_file.exists():
            hung.append(True)
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    timer = threading.Timer(20, watchdog)
    timer.start()
    try:
        if exit_code:
            with pytest.raises(disk.DiskError):
                converter.qemu_convert(str(tmp_path / "in.raw"), "raw", str(tmp_path / "out.qcow2"), "qcow2",
                                       False, "converting")
        else:
            converter.qemu_convert(str(tmp_path / "in.raw"), "raw", str(tmp_path / "out.qcow2"), "qcow2", False,
                                   "converting")
    finally:
        timer.cancel()
    assert not hung
    assert seen and seen[-1].endswith("100.0%")


@pytest.mark.parametrize("suffix", ["", ".sha256", ".json"])
def test_a_progress_file_on_the_output_or_its_sidecars_is_refused(capsys, qcow2, tmp_path, suffix):
    """progress_file is removed at the end of every run: on dest (or DEST.sha256, DEST.json) it removed the output
    it had just made, or a valid one that was up to date. Refused before anything is written; the outputs stay."""
    dest = tmp_path / "out.qcow2"
    assert run_module(capsys, src=str(qcow2), dest=str(dest))["rc"] == 0
    outputs = dict((name, fingerprint(tmp_path / name)) for name in ("out.qcow2", "out.qcow2.sha256", "out.qcow2.json"))
    for force in (False, True):
        result = run_module(capsys, src=str(qcow2), dest=str(dest), progress_file=str(dest) + suffix, force=force)
        assert result["rc"] == 1 and result.get("failed") is True, result
        assert dict((name, fingerprint(tmp_path / name)) for name in outputs) == outputs


# ------------------------------------------------------------------------------------- compress: auto

def vmdk_of(tmp_path, subformat):
    """A 16 MiB VMDK (monolithicSparse or streamOptimized) with compressible data in 4 MiB of it."""
    raw = tmp_path / "data.raw"
    with open(raw, "wb") as handle:
        for i in range(4):
            handle.seek(i * 4 * 1024 ** 2)
            handle.write(b"course notebook data " * 50000)
        handle.truncate(16 * 1024 ** 2)
    vmdk = tmp_path / ("%s.vmdk" % subformat)
    qemu_img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=%s" % subformat, str(raw), str(vmdk))
    return vmdk, raw


def has_compressed_clusters(path):
    """qemu-img check reports how many of a qcow2's allocated clusters are compressed."""
    out = subprocess.run(["qemu-img", "check", "--output=json", str(path)], capture_output=True, check=False).stdout
    return json.loads(out).get("compressed-clusters", 0) > 0


@pytest.mark.parametrize("subformat, compressed", [("streamOptimized", True), ("monolithicSparse", False)])
def test_compress_auto_follows_the_source(capsys, tmp_path, subformat, compressed):
    vmdk, raw = vmdk_of(tmp_path, subformat)
    dest = tmp_path / "out.qcow2"
    result = run_module(capsys, src=str(vmdk), dest=str(dest))  # compress: auto is the default
    assert result["rc"] == 0 and result["compressed"] is compressed, result
    assert has_compressed_clusters(dest) is compressed
    assert json.loads((tmp_path / "out.qcow2.json").read_text())["options"]["compress"] is compressed
    qemu_img("compare", "-f", "raw", "-F", "qcow2", str(raw), str(dest))


@pytest.mark.parametrize("given, compressed", [(True, True), ("yes", True), (False, False), ("false", False),
                                               ("AUTO", False)])
def test_compress_true_and_false_keep_their_meaning(capsys, qcow2, tmp_path, given, compressed):
    dest = tmp_path / "out.qcow2"
    result = run_module(capsys, src=str(qcow2), dest=str(dest), compress=given)
    assert result["rc"] == 0 and result["compressed"] is compressed, result
    assert json.loads((tmp_path / "out.qcow2.json").read_text())["options"]["compress"] is compressed


def test_compress_auto_with_raw_output_does_not_compress_and_a_bad_value_is_refused(capsys, tmp_path):
    vmdk, unused = vmdk_of(tmp_path, "streamOptimized")
    result = run_module(capsys, src=str(vmdk), dest=str(tmp_path / "out.raw"), format="raw")
    assert result["rc"] == 0 and result["compressed"] is False, result
    refused = run_module(capsys, src=str(vmdk), dest=str(tmp_path / "o.qcow2"), compress="maybe")
    assert refused["rc"] == 1 and "compress must be true, false or auto" in refused["msg"]
    assert not (tmp_path / "o.qcow2").exists()


def test_an_output_made_with_compress_false_is_up_to_date_under_auto_when_it_decides_alike(capsys, qcow2, tmp_path):
    dest = tmp_path / "out.qcow2"
    assert run_module(capsys, src=str(qcow2), dest=str(dest), compress=False)["changed"] is True
    again = run_module(capsys, src=str(qcow2), dest=str(dest))
    assert again["changed"] is False and again["compressed"] is False
    assert run_module(capsys, src=str(qcow2), dest=str(dest), compress=True)["changed"] is True


# ---------------------------------------------------------------------- the source's checksum and stat

def count_source_hashes(monkeypatch, src):
    """The number of times the source is read whole for its SHA-256 (the list grows by one each time)."""
    reads = []
    sha256_file = disk.sha256_file

    def counting(path, *args, **kwargs):
        if os.path.samefile(path, str(src)):
            reads.append(path)
        return sha256_file(path, *args, **kwargs)

    monkeypatch.setattr(disk, "sha256_file", counting)
    return reads


def test_a_rerun_on_an_unchanged_source_does_not_read_it_again(capsys, qcow2, tmp_path, monkeypatch):
    dest = tmp_path / "out.qcow2"
    first = run_module(capsys, src=str(qcow2), dest=str(dest))
    recorded = json.loads((tmp_path / "out.qcow2.json").read_text())["source_stat"]
    assert recorded == disk.file_stat(str(qcow2))
    reads = count_source_hashes(monkeypatch, qcow2)
    again = run_module(capsys, src=str(qcow2), dest=str(dest))
    assert again["changed"] is False and "unchanged source" in again["reason"] and reads == []
    assert again["source"]["sha256"] == first["source"]["sha256"]
    checked = run_module(capsys, src=str(qcow2), dest=str(dest), trust_source_stat=False)
    assert checked["changed"] is False and len(reads) == 1


def test_a_touched_source_is_read_again_found_the_same_and_its_new_stat_recorded(capsys, qcow2, tmp_path, monkeypatch):
    dest = tmp_path / "out.qcow2"
    run_module(capsys, src=str(qcow2), dest=str(dest))
    output = fingerprint(dest)
    stat = os.stat(qcow2)
    os.utime(qcow2, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    reads = count_source_hashes(monkeypatch, qcow2)
    again = run_module(capsys, src=str(qcow2), dest=str(dest))
    assert again["changed"] is False and len(reads) == 1 and fingerprint(dest) == output
    assert json.loads((tmp_path / "out.qcow2.json").read_text())["source_stat"] == disk.file_stat(str(qcow2))
    assert run_module(capsys, src=str(qcow2), dest=str(dest))["changed"] is False and len(reads) == 1


def test_check_mode_records_nothing_for_a_touched_source(capsys, qcow2, tmp_path):
    dest = tmp_path / "out.qcow2"
    run_module(capsys, src=str(qcow2), dest=str(dest))
    sidecar = fingerprint(tmp_path / "out.qcow2.json")
    os.utime(qcow2, ns=(0, os.stat(qcow2).st_mtime_ns + 1000))
    result = run_module(capsys, src=str(qcow2), dest=str(dest), _ansible_check_mode=True)
    assert result["changed"] is False and fingerprint(tmp_path / "out.qcow2.json") == sidecar


def test_same_size_rewrite_with_its_mtime_restored_is_caught_only_without_trust(capsys, qcow2, tmp_path):
    """The documented limit of trust_source_stat: a rewrite in place that keeps size and mtime is not noticed."""
    dest = tmp_path / "out.qcow2"
    run_module(capsys, src=str(qcow2), dest=str(dest))
    stat = os.stat(qcow2)
    with open(qcow2, "r+b") as handle:
        handle.seek(stat.st_size - 512)
        handle.write(b"\0" * 511 + b"\1")
    os.utime(qcow2, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run_module(capsys, src=str(qcow2), dest=str(dest))["changed"] is False
    assert run_module(capsys, src=str(qcow2), dest=str(dest), trust_source_stat=False)["changed"] is True


def test_a_sidecar_without_the_stat_makes_the_source_read(capsys, qcow2, tmp_path, monkeypatch):
    """DEST.json of an older version holds no stat: the source is read, found the same, and the stat recorded."""
    dest = tmp_path / "out.qcow2"
    run_module(capsys, src=str(qcow2), dest=str(dest))
    sidecar = tmp_path / "out.qcow2.json"
    record = json.loads(sidecar.read_text())
    del record["source_stat"]
    sidecar.write_text(json.dumps(record))
    reads = count_source_hashes(monkeypatch, qcow2)
    assert run_module(capsys, src=str(qcow2), dest=str(dest))["changed"] is False and len(reads) == 1
    assert "source_stat" in json.loads(sidecar.read_text())


def test_the_source_is_checksummed_while_qemu_img_converts_it(capsys, tmp_path, monkeypatch):
    """The hashing thread is still reading when qemu-img starts: it waits (up to 10 s) for the conversion to
    begin before finishing, which a hash taken before the conversion never could."""
    src = tmp_path / "data.raw"
    with open(src, "wb") as handle:
        handle.write(os.urandom(1024 ** 2))
        handle.truncate(32 * 1024 ** 2)
    converting, overlapped = threading.Event(), []
    sha256_file, qemu_convert = disk.sha256_file, disk_image.Converter.qemu_convert

    def slow_hash(path, *args, **kwargs):
        if path == str(src):
            overlapped.append(converting.wait(10))
        return sha256_file(path, *args, **kwargs)

    def convert(self, *args):
        converting.set()
        return qemu_convert(self, *args)

    monkeypatch.setattr(disk, "sha256_file", slow_hash)
    monkeypatch.setattr(disk_image.Converter, "qemu_convert", convert)
    result = run_module(capsys, src=str(src), src_format="raw", dest=str(tmp_path / "out.qcow2"))
    assert result["changed"] is True and overlapped == [True]
    assert result["source"]["sha256"] == sha256_file(str(src))
    assert json.loads((tmp_path / "out.qcow2.json").read_text())["source_sha256"] == result["source"]["sha256"]


def test_a_failed_conversion_stops_the_source_checksum(capsys, qcow2, tmp_path, monkeypatch):
    hashing = []
    background = disk.BackgroundSha256

    def recording(*args, **kwargs):
        hashing.append(background(*args, **kwargs))
        return hashing[-1]

    def fail(self, *args):
        raise disk.DiskError("qemu-img convert failed: no space left on device")

    monkeypatch.setattr(disk, "BackgroundSha256", recording)
    monkeypatch.setattr(disk_image.Converter, "qemu_convert", fail)
    result = run_module(capsys, src=str(qcow2), dest=str(tmp_path / "out.qcow2"))
    assert result["rc"] == 1 and "no space left" in result["msg"]
    assert len(hashing) == 1 and not hashing[0].is_alive() and hashing[0].stopped.is_set()
    assert sorted(os.listdir(tmp_path)) == ["small.qcow2"]
