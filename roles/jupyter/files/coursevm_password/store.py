"""The student's own Jupyter password, kept beside the operator's: pure functions, standard library only.

The operator's hash is in Jupyter's config (role coursevm.openstack.jupyter, from the controller's record). A
student who changes the password from the browser gets a JSON file in Jupyter's state folder:

    {"format": 1, "hashed_password": "argon2:...", "replaces": "<sha256 of the operator's hash>",
     "changed_at": "2026-11-30T13:20:00Z"}

It counts only while the operator's hash is the one it replaced: an operator's reset (a new hash in the config)
makes it stale at once, so the operator always wins, even before the file is removed.
"""

import datetime
import hashlib
import json
import os
import tempfile

FORMAT = 1
# Long enough for any passphrase; short enough that hashing it is not a way to load the server.
MAX_LENGTH = 1024

# Why a new password is refused, as codes a page and a test can rely on (the page words them for people).
WRONG_CURRENT = "wrong-current"
MISMATCH = "mismatch"
TOO_SHORT = "too-short"
TOO_LONG = "too-long"
# Jupyter's login form strips the typed password (tornado's get_argument), so such a password could never log in.
EDGE_WHITESPACE = "edge-whitespace"
CHANGED = "changed"
NOT_SAVED = "not-saved"


def fingerprint(hashed_password):
    """What the student's file records of the operator's hash it replaces (the hash itself is not needed)."""
    return hashlib.sha256((hashed_password or "").encode("utf-8")).hexdigest()


def new_password_problem(new, repeat, min_length):
    """None when ``new`` may become the password, else the code of the first problem."""
    if new != repeat:
        return MISMATCH
    if len(new) < max(int(min_length), 1):
        return TOO_SHORT
    if len(new) > MAX_LENGTH:
        return TOO_LONG
    if new != new.strip():
        return EDGE_WHITESPACE
    return None


def read_override(path, operator_hash):
    """The student's record at ``path`` when it applies (it replaced ``operator_hash``), else None.

    A missing, unreadable or malformed file, or one made against another operator's hash, does not apply: the
    operator's password then works, which is the recovery route.
    """
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    hashed = record.get("hashed_password")
    if not isinstance(hashed, str) or not hashed.startswith("argon2:"):
        return None
    if record.get("replaces") != fingerprint(operator_hash):
        return None
    return record


def write_override(path, hashed_password, operator_hash, now=None):
    """Write the student's record atomically (mode 0600): a reader sees the old file or the new one, never half."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    record = {"format": FORMAT, "hashed_password": hashed_password, "replaces": fingerprint(operator_hash),
              "changed_at": now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    folder = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".student-password-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(record, handle, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    # The rename itself must reach the disk too, or a power cut could bring the old password back.
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return record
