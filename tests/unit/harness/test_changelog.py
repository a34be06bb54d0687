"""The changelog (antsibull-changelog): fragments and changelogs/changelog.yaml lint clean, CHANGELOG.md is exactly
what `antsibull-changelog generate` writes from them, and tests/support/changelog_check.py refuses a commit that
changes roles/, plugins/ or playbooks/ without a fragment (unless it says `Changelog: none`)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHECK = ROOT / "tests" / "support" / "changelog_check.py"
ANTSIBULL = Path(sys.executable).with_name("antsibull-changelog")
# Git without the machine's or the user's configuration (signing, hooks, templates).
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@localhost", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@localhost")


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=GIT_ENV,
                          check=True, timeout=60).stdout


def check(repo, *args):
    return subprocess.run([sys.executable, str(CHECK), "--repo", str(repo), *args], capture_output=True, text=True,
                          env=GIT_ENV, check=False, timeout=120)


class Repo:
    """A throw-away Git repository whose first commit starts the changelog (adds changelogs/config.yaml)."""

    def __init__(self, path):
        self.path = path
        git(path, "init", "-q", "-b", "main")
        self.commit({"roles/x/tasks/main.yml": "---\n"}, "before the changelog: not checked")
        self.base = self.commit({"changelogs/config.yaml": "---\n", "changelogs/fragments/.keep": ""},
                                "changelog: antsibull-changelog")

    def commit(self, files, message):
        for name, text in files.items():
            target = self.path / name
            if text is None:
                git(self.path, "rm", "-q", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            git(self.path, "add", name)
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "--short", "HEAD").strip()


@pytest.fixture
def repo(tmp_path):
    return Repo(tmp_path)


def test_a_role_change_without_a_fragment_fails_naming_the_commit(repo):
    ok = repo.commit({"roles/x/tasks/main.yml": "---\n- ansible.builtin.meta: noop\n",
                      "changelogs/fragments/x.yml": "---\nminor_changes:\n  - x.\n"}, "x with its fragment")
    bad = repo.commit({"roles/x/defaults/main.yml": "---\nx_port: 1\n"}, "x: a port")
    result = check(repo.path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert bad in result.stdout.split()
    assert ok not in result.stdout.split()


@pytest.mark.parametrize("folder", ["roles/x/tasks", "plugins/modules", "playbooks"])
def test_each_watched_folder_needs_a_fragment(repo, folder):
    repo.commit({folder + "/a.yml": "---\n"}, "a change")
    assert check(repo.path).returncode == 1


@pytest.mark.parametrize("fragment", ["changelogs/fragments/18-x.yml", "changelogs/fragments/x.yaml",
                                      "changelogs/changelog.yaml"])
def test_a_fragment_or_the_changes_file_in_the_same_commit_passes(repo, fragment):
    repo.commit({"plugins/modules/m.py": "# m\n", fragment: "---\nbugfixes:\n  - m.\n"}, "m: a fix")
    result = check(repo.path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_fragment_in_a_later_commit_does_not_cover_an_earlier_one(repo):
    bad = repo.commit({"playbooks/p.yml": "---\n"}, "p")
    repo.commit({"changelogs/fragments/p.yml": "---\nminor_changes:\n  - p.\n"}, "p: fragment")
    result = check(repo.path)
    assert result.returncode == 1
    assert bad in result.stdout.split()


def test_removing_a_fragment_or_a_file_of_another_kind_is_no_fragment(repo):
    repo.commit({"changelogs/fragments/old.yml": "---\nbugfixes:\n  - old.\n"}, "old fragment")
    repo.commit({"roles/x/tasks/main.yml": "---\n# changed\n", "changelogs/fragments/old.yml": None,
                 "changelogs/fragments/notes.txt": "x\n"}, "x: change")
    assert check(repo.path).returncode == 1


@pytest.mark.parametrize("trailer", ["Changelog: none", "changelog: None", "  Changelog:  none  "])
def test_the_changelog_none_trailer_passes(repo, trailer):
    repo.commit({"roles/x/tasks/main.yml": "---\n# lint\n"}, "x: lint only\n\n%s\n" % trailer)
    result = check(repo.path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_trailer_must_be_a_line_of_its_own(repo):
    repo.commit({"roles/x/tasks/main.yml": "---\n# lint\n"}, "x: no Changelog: none here")
    assert check(repo.path).returncode == 1


def test_changes_outside_roles_plugins_and_playbooks_need_no_fragment(repo):
    repo.commit({"docs/x.md": "x\n", "tests/unit/test_x.py": "", "README.md": "x\n",
                 "molecule/x/molecule.yml": "---\n", "roles.md": "x\n"}, "docs and tests")
    result = check(repo.path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_merges_are_left_to_their_branches_commits(repo):
    git(repo.path, "checkout", "-q", "-b", "topic")
    repo.commit({"roles/x/tasks/main.yml": "---\n# topic\n", "changelogs/fragments/t.yml": "---\nbugfixes:\n  - t.\n"},
                "topic")
    git(repo.path, "checkout", "-q", "main")
    repo.commit({"docs/y.md": "y\n"}, "docs")
    git(repo.path, "merge", "-q", "--no-ff", "-m", "Merge topic", "topic")
    assert check(repo.path).returncode == 0


def test_the_base_is_the_commit_that_added_the_config_unless_given(repo):
    first = git(repo.path, "rev-list", "--max-parents=0", "HEAD").strip()
    # The commit before the base changed roles/ without a fragment: only an explicit base reaches it.
    assert check(repo.path).returncode == 0
    assert check(repo.path, "--base", first).returncode == 0
    assert check(repo.path, "--base", repo.base).returncode == 0
    bad = repo.commit({"roles/x/tasks/main.yml": "---\n# late\n"}, "late")
    assert check(repo.path, "--base", bad).returncode == 0
    assert check(repo.path, "--base", repo.base).returncode == 1


def test_an_unknown_base_is_a_usage_error(repo):
    assert check(repo.path, "--base", "no-such-commit").returncode == 2


def test_the_fragments_and_the_changes_file_lint_clean():
    lint = subprocess.run([str(ANTSIBULL), "lint"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout == ""
    changes = subprocess.run([str(ANTSIBULL), "lint-changelog-yaml", "--strict", "changelogs/changelog.yaml"],
                             cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert changes.returncode == 0, changes.stdout + changes.stderr
    assert changes.stdout == ""


def test_changelog_md_is_what_generate_writes(tmp_path):
    shutil.copytree(ROOT / "changelogs", tmp_path / "changelogs", ignore=shutil.ignore_patterns(".plugin-cache.yaml"))
    shutil.copy(ROOT / "galaxy.yml", tmp_path / "galaxy.yml")
    subprocess.run([str(ANTSIBULL), "generate"], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=120)
    assert (tmp_path / "CHANGELOG.md").read_bytes() == (ROOT / "CHANGELOG.md").read_bytes(), (
        "CHANGELOG.md differs from what `antsibull-changelog generate` writes: add a fragment instead of editing it")


def test_the_repository_history_passes_the_check():
    result = subprocess.run([sys.executable, str(CHECK)], cwd=ROOT, capture_output=True, text=True, check=False,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
