"""image_upload's upload with a progress file, against a stand-in for openstacksdk's image proxy that reads the
data as requests does (in blocks). The module against the real local Glance: tests/cloud_integration/."""

import os
import types

import pytest

from ansible_collections.coursevm.openstack.plugins.modules import image_upload

MIB = 1024 ** 2


class Failed(Exception):
    pass


class FakeImages:
    """conn.image: no image of the name yet; create_image reads ``data`` in 64 KiB blocks, as requests sends it,
    and records what the progress file said after each block."""

    def __init__(self, progress_file=None):
        self.progress_file, self.calls, self.seen, self.received = progress_file, [], [], b""

    def images(self, **query):
        self.calls.append("images")
        return []

    def create_image(self, name, **kwargs):
        self.calls.append("create_image")
        assert "filename" not in kwargs and kwargs["validate_checksum"] is False
        data = kwargs["data"]
        assert len(data) == kwargs["size"]
        for block in iter(lambda: data.read(64 * 1024), b""):
            self.received += block
            if self.progress_file and os.path.exists(self.progress_file):
                with open(self.progress_file) as handle:
                    text = handle.read()
                if not self.seen or self.seen[-1] != text:
                    self.seen.append(text)
        self.kwargs = kwargs
        return types.SimpleNamespace(id="new-id")

    def get_image(self, image_id):
        return types.SimpleNamespace(id=image_id, name="course", status="active", size=len(self.received),
                                     virtual_size=None, min_disk=1, min_ram=0, disk_format="qcow2",
                                     visibility="private", properties={"coursevm_sha256": self.kwargs["coursevm_sha256"]})

    def update_image(self, *args, **kwargs):
        self.calls.append("update_image")


def module(tmp_path, images, check_mode=False, **params):
    """An ImageUploadModule with its parameters and a stand-in connection, without Ansible's argument parsing."""
    mod = object.__new__(image_upload.ImageUploadModule)
    mod.params = dict({"name": "course", "checksum": None, "disk_format": "qcow2", "container_format": "bare",
                       "min_disk": 1, "min_ram": 0, "visibility": "private", "properties": {}, "previous": "rename",
                       "wait": False, "timeout": 60, "progress_file": None}, **params)
    mod.check_mode = check_mode
    mod.conn = types.SimpleNamespace(image=images, current_project_id="p")

    def fail_json(**result):
        raise Failed(result["msg"])

    mod.fail_json = fail_json
    return mod


@pytest.fixture
def disk_file(tmp_path):
    path = tmp_path / "course.qcow2"
    path.write_bytes(os.urandom(3 * MIB + 12345))
    return path


def test_upload_sends_the_file_through_a_counting_reader_and_shows_progress(tmp_path, disk_file):
    progress = tmp_path / "upload.progress"
    images = FakeImages(str(progress))
    result = module(tmp_path, images, filename=str(disk_file), progress_file=str(progress)).run()
    assert result["uploaded"] is True and images.received == disk_file.read_bytes()
    assert images.kwargs["size"] == disk_file.stat().st_size
    percents = [float(text[len("uploading: "):-2]) for text in images.seen]
    assert all(text.startswith("uploading: ") and text.endswith("%\n") for text in images.seen)
    assert len(percents) > 2 and percents == sorted(percents) and percents[-1] == 100.0
    assert not progress.exists() and not os.path.exists(str(progress) + ".tmp")


def test_without_a_progress_file_nothing_is_written(tmp_path, disk_file):
    images = FakeImages()
    listing = sorted(os.listdir(str(tmp_path)))
    assert module(tmp_path, images, filename=str(disk_file)).run()["uploaded"] is True
    assert images.received == disk_file.read_bytes() and sorted(os.listdir(str(tmp_path))) == listing


def test_check_mode_writes_no_progress(tmp_path, disk_file):
    progress = tmp_path / "upload.progress"
    images = FakeImages(str(progress))
    result = module(tmp_path, images, check_mode=True, filename=str(disk_file), progress_file=str(progress)).run()
    assert result["changed"] is True and "create_image" not in images.calls and not progress.exists()


def aliases(path):
    """Names that reach the file ``path``: itself, a symlink, one through '..', a hard link."""
    folder = path.parent
    (folder / "sub").mkdir(exist_ok=True)
    link, hard = folder / "link.qcow2", folder / "hard.qcow2"
    link.symlink_to(path)
    os.link(str(path), str(hard))
    return {"same": str(path), "symlink": str(link), "dotdot": str(folder / "sub" / ".." / path.name),
            "hardlink": str(hard)}


@pytest.mark.parametrize("how", ["same", "symlink", "dotdot", "hardlink"])
@pytest.mark.parametrize("through_tmp", [False, True])
def test_a_progress_file_reaching_the_file_to_upload_is_refused_before_anything(tmp_path, disk_file, how, through_tmp):
    alias = aliases(disk_file)[how]
    if through_tmp:  # progress_file X writes X.tmp: X.tmp is the file to upload
        tmp_named = tmp_path / "course.qcow2.progress.tmp"
        os.rename(str(disk_file), str(tmp_named))
        disk_file = tmp_named
        alias = str(tmp_named)[:-len(".tmp")]
    before = disk_file.read_bytes()
    images = FakeImages()
    for check_mode in (False, True):
        with pytest.raises(Failed, match="progress_file"):
            module(tmp_path, images, check_mode=check_mode, filename=str(disk_file), progress_file=alias).run()
    assert images.calls == [] and disk_file.read_bytes() == before


def test_a_progress_file_in_a_missing_folder_is_refused_before_anything(tmp_path, disk_file):
    images = FakeImages()
    with pytest.raises(Failed, match="does not exist"):
        module(tmp_path, images, filename=str(disk_file), progress_file=str(tmp_path / "no" / "p")).run()
    assert images.calls == []


def test_progress_reader_shows_each_whole_percent_once_and_100_at_the_end(tmp_path):
    data = tmp_path / "d"
    data.write_bytes(b"x" * 1000)
    shown = []
    with open(str(data), "rb") as handle:
        reader = image_upload.ProgressReader(handle, 1000, shown.append)
        received = b"".join(iter(lambda: reader.read(3), b""))
    assert received == b"x" * 1000 and len(reader) == 1000
    assert shown[0] == pytest.approx(0.3) and shown[-1] == 100.0 and shown == sorted(shown)
    assert all(b - a >= 1 for a, b in zip(shown, shown[1:-1]))
    with open(os.devnull, "rb") as handle:
        empty = image_upload.ProgressReader(handle, 0, shown.append)
        assert bool(empty) and empty.read() == b"" and shown[-1] == 100.0
