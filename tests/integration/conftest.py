"""What the integration tests share: tests/support on sys.path, and a course's controller-side credentials."""

import inspect
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import role_check  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture()
def course(tmp_path):
    """The credentials role's controller side in a fresh folder (role_check.credentials_course)."""
    return role_check.credentials_course(tmp_path)


@pytest.fixture(scope="module", autouse=True)
def batched_cases(request):
    """For a module with `BATCHED = True`: its playbook cases run together before its tests (role_check.Batch).
    The recording pass calls each test of the module with its parameters and module- or session-scoped
    fixtures; a test that needs anything else is left out and runs its playbook on its own."""
    batch = role_check.batch()
    batch.clear()
    if getattr(request.module, "BATCHED", False):
        with batch.recording_pass():
            for item in request.session.items:
                if getattr(item, "module", None) is not request.module:
                    continue
                args = _module_scoped_args(request, item)
                if args is None:
                    continue
                try:
                    item.obj(**args)
                # Recorded ends the test where it would run a playbook; any other error, the test's own run reports.
                except Exception:  # pylint: disable=broad-except
                    pass
        batch.run()
    yield batch
    batch.clear()


def _module_scoped_args(request, item):
    """The test's arguments: its parameters, and the fixtures it names if they are module- or session-scoped;
    None when it names any other."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    args = {}
    for name in inspect.signature(item.obj).parameters:
        if name in params:
            args[name] = params[name]
            continue
        definitions = item._fixtureinfo.name2fixturedefs.get(name)  # pylint: disable=protected-access
        if not definitions or definitions[-1].scope not in ("module", "session", "package"):
            return None
        args[name] = request.getfixturevalue(name)
    return args
