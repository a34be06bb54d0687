"""Every commit that changes the collection's behaviour carries its changelog fragment.

For each commit in BASE..HEAD (merges left out: their branches' commits are checked one by one) that adds,
changes or removes a file under roles/, plugins/ or playbooks/, the same commit must add or change a fragment
(changelogs/fragments/*.yml or *.yaml) or changelogs/changelog.yaml. A commit that needs no changelog entry (a
refactor, tests or lint only) says so with a line of its message (a Git trailer):

    Changelog: none

Exit 0 when every such commit is fine; 1 listing the others (short hash and subject); 2 when the history cannot
be read (no git, an unknown BASE, a shallow clone without BASE).

    python3 tests/support/changelog_check.py                 # BASE: the commit that added changelogs/config.yaml
    python3 tests/support/changelog_check.py --base origin/main --repo /path/to/checkout

Standard library only (Python 3.11+).
"""

import argparse
import re
import subprocess
import sys

WATCHED = ("roles/", "plugins/", "playbooks/")
FRAGMENTS = "changelogs/fragments/"
CHANGES_FILE = "changelogs/changelog.yaml"
CONFIG = "changelogs/config.yaml"
NO_CHANGELOG = re.compile(r"^[ \t]*changelog:[ \t]*none[ \t]*$", re.IGNORECASE | re.MULTILINE)


class HistoryError(Exception):
    """The history cannot be read as asked."""


def git(repo, *args):
    result = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HistoryError("git %s: %s" % (" ".join(args), result.stderr.strip() or "exit %d" % result.returncode))
    return result.stdout


def default_base(repo, head):
    """The oldest commit of HEAD's history that added changelogs/config.yaml, or None."""
    added = git(repo, "log", "--diff-filter=A", "--format=%H", head, "--", CONFIG).split()
    if added:
        return added[-1]
    if git(repo, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise HistoryError("a shallow clone: no commit adding %s in it; fetch the history or give --base" % CONFIG)
    return None


def changed_files(repo, commit):
    """{path: status letter} of a commit against its parent (renames as a removal and an addition)."""
    out = git(repo, "diff-tree", "-r", "--root", "--no-commit-id", "--no-renames", "--name-status", "-z", commit)
    fields = out.split("\0")
    return {path: status for status, path in zip(fields[0::2], fields[1::2]) if path}


def needs_fragment(files):
    return any(path.startswith(WATCHED) for path in files)


def has_fragment(files):
    for path, status in files.items():
        if status == "D":
            continue
        if path == CHANGES_FILE:
            return True
        if path.startswith(FRAGMENTS) and path.endswith((".yml", ".yaml")):
            return True
    return False


def offending_commits(repo, base, head="HEAD"):
    """[(short hash, subject)] of the commits in base..head that need a fragment and carry none."""
    span = "%s..%s" % (base, head) if base else head
    offending = []
    for commit in git(repo, "rev-list", "--no-merges", "--reverse", span).split():
        files = changed_files(repo, commit)
        if not needs_fragment(files) or has_fragment(files):
            continue
        message = git(repo, "log", "-1", "--format=%B", commit)
        if NO_CHANGELOG.search(message):
            continue
        short = git(repo, "rev-parse", "--short", commit).strip()
        offending.append((short, message.splitlines()[0] if message.strip() else ""))
    return offending


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", help="check the commits after this one (default: the commit that added %s)" % CONFIG)
    parser.add_argument("--head", default="HEAD", help="the last commit to check (default: HEAD)")
    parser.add_argument("--repo", default=".", help="the Git checkout (default: the current directory)")
    args = parser.parse_args(argv)
    try:
        for name in filter(None, (args.head, args.base)):
            try:
                git(args.repo, "rev-parse", "--verify", "--quiet", name + "^{commit}")
            except HistoryError:
                raise HistoryError("%s is no commit of %s" % (name, args.repo)) from None
        if args.base:
            base = args.base
        else:
            base = default_base(args.repo, args.head)
            if base is None:
                print("changelog check: no commit adds %s yet; nothing to check" % CONFIG)
                return 0
        offending = offending_commits(args.repo, base, args.head)
    except (HistoryError, OSError) as exc:
        print("changelog check: %s" % exc, file=sys.stderr)
        return 2
    if offending:
        print("These commits change %s without a changelog fragment in %s (or a line 'Changelog: none'):"
              % (", ".join(WATCHED), FRAGMENTS))
        for short, subject in offending:
            print("  %s %s" % (short, subject))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
