"""Look for secrets in what a run printed (issue 14: a -vvv run of a playbook prints none of the secrets it was
given or made). The secrets are read from where the job keeps them, the credentials role's records on the
controller, and from the private key files a job was given; a failure names the secret's place, never its text."""

import re
from pathlib import Path

import yaml

# Where a secret is shown on purpose, once, to the person who must pass it on; everywhere else is a leak.
SHOWN_ON_PURPOSE = {
    # ./coursevm local's closing message: the student's URL and password (one student, or a line per student).
    "coursevm local": re.compile(r"^ +(student\d+ +URL: .* Password: |Password: )\S+ *$", re.M),
    # reset_password.yml's last task, to the operator (also in the handout).
    "reset_password.yml": re.compile(r"Student [a-z0-9-]+: \S+ Jupyter password \S+?(?: / Unix password for \S+: \S+?)?"
                                     r"(?=\"|$)", re.M),
}

# Record keys whose value is a plaintext secret (hashes and public keys are not).
SECRET_WORDS = ("password", "secret", "token", "private")
SKIP_WORDS = ("hash", "public", "changed_at", "file", "dir", "path", "min_length")


def _walk(value, where, keys=()):
    """(place, secret) of the strings under a key that names a secret (passwords: {admin: ...} counts too)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, "%s.%s" % (where, key), keys + (str(key).lower(),))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, "%s[%d]" % (where, index), keys)
    elif isinstance(value, str) and keys and len(value) >= 8:
        if any(w in k for k in keys for w in SECRET_WORDS) and not any(w in keys[-1] for w in SKIP_WORDS):
            yield where, value


def recorded(secrets_dir):
    """{place: secret} of every record (*.yml) in a credentials_secrets_dir and its folders (the databases' records
    are in postgresql/ and mongodb/)."""
    found = {}
    for path in sorted(Path(secrets_dir).rglob("*.yml")):
        found.update(_walk(yaml.safe_load(path.read_text()), str(path.relative_to(secrets_dir))))
    return found


def private_key(path):
    """{place: line} of a private key file's base64 body: any one line printed would leak it."""
    lines = [line for line in Path(path).read_text().splitlines() if line and not line.startswith("-----")]
    return dict(("%s line %d" % (Path(path).name, n), line) for n, line in enumerate(lines, 1) if len(line) >= 16)


def shown_on_purpose(text):
    """How many times each place that shows a secret on purpose does so in text."""
    return dict((name, len(pattern.findall(text))) for name, pattern in SHOWN_ON_PURPOSE.items())


def printed(text, secrets):
    """The places of the secrets that appear in text outside SHOWN_ON_PURPOSE (empty when none does)."""
    for pattern in SHOWN_ON_PURPOSE.values():
        text = pattern.sub("", text)
    return sorted(place for place, secret in secrets.items() if secret in text)
