"""Run `ansible` or `ansible-playbook` with the ansible.posix.json stdout callback and read its output."""

import json
import subprocess

import pytest


def run_json(cmd, env, read=lambda out: out, timeout=600, cwd=None):
    """Run ``cmd`` with ``env`` (which must select the json callback); return (the finished process,
    ``read(parsed output)``). When stdout is not the JSON ``read`` expects (Ansible died before the callback
    printed, or printed no such play or task), the test fails showing the ends of stdout and stderr."""
    proc = subprocess.run([str(part) for part in cmd], capture_output=True, text=True, env=env, timeout=timeout,
                          check=False, cwd=cwd)
    try:
        return proc, read(json.loads(proc.stdout))
    except (ValueError, KeyError, IndexError):
        pytest.fail("no JSON result from %s (exit %d):\n%s\n%s"
                    % (" ".join(str(part) for part in cmd), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))


def inventory_json(text):
    """ansible-inventory --list's JSON with the cloud's values unwrapped: an inventory plugin's values are
    untrusted (never templated), which the JSON shows as {"__ansible_unsafe": value}."""
    def plain(data):
        if isinstance(data, dict):
            if set(data) == {"__ansible_unsafe"}:
                return data["__ansible_unsafe"]
            return dict((k, plain(v)) for k, v in data.items())
        if isinstance(data, list):
            return [plain(v) for v in data]
        return data
    return plain(json.loads(text))
