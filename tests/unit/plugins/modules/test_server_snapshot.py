"""server_snapshot's naming and rotation."""

import datetime

from ansible_collections.coursevm.openstack.plugins.modules import server_snapshot as ss


def test_default_name_is_server_and_utc_timestamp():
    now = datetime.datetime(2026, 3, 1, 12, 0, 5, tzinfo=datetime.timezone.utc)
    assert ss.default_name("course-alice", now) == "course-alice-20260301T120005Z"


def test_default_name_uses_utc_now():
    name = ss.default_name("s")
    stamp = datetime.datetime.strptime(name[2:], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) < 5


SNAPS = [
    {"id": "3", "name": "s-c", "created_at": "2026-03-03T00:00:00Z"},
    {"id": "1", "name": "s-a", "created_at": "2026-03-01T00:00:00Z"},
    {"id": "2", "name": "s-b", "created_at": "2026-03-02T00:00:00Z"},
]


def test_rotation_deletes_all_but_the_newest_oldest_first():
    assert [s["id"] for s in ss.snapshots_to_delete(SNAPS, 1)] == ["1", "2"]
    assert [s["id"] for s in ss.snapshots_to_delete(SNAPS, 2)] == ["1"]


def test_rotation_keeps_everything_when_keep_is_unset_or_large():
    assert ss.snapshots_to_delete(SNAPS, None) == []
    assert ss.snapshots_to_delete(SNAPS, 3) == []
    assert ss.snapshots_to_delete(SNAPS, 10) == []


def test_check_mode_rotation_with_keep_one_would_delete_every_existing_snapshot():
    # the module passes keep - 1 in check mode: the snapshot to come is the newest
    assert len(ss.snapshots_to_delete(SNAPS, 0)) == 3


def test_same_second_snapshots_are_ordered_by_name():
    same = [{"id": "b", "name": "x-2", "created_at": "2026-03-01T00:00:00Z"},
            {"id": "a", "name": "x-1", "created_at": "2026-03-01T00:00:00Z"}]
    assert [s["id"] for s in ss.snapshots_to_delete(same, 1)] == ["a"]
