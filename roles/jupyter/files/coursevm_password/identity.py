"""Jupyter's password login, with the student's own password (when they set one) in front of the operator's."""

from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.auth.security import passwd_check
from traitlets import Integer, Unicode

from . import store


class CourseVMPasswordIdentityProvider(PasswordIdentityProvider):
    """``hashed_password`` stays the operator's (the config's); the student's file, while it applies, wins.

    The file is read at every check, so a change takes effect at once, and an operator who removes it (or gives a
    new password, which makes it stale) wins at once too.
    """

    student_password_file = Unicode(
        "", config=True,
        help="The student's own password hash (JSON, written by the coursevm/password page); empty: none.")
    min_password_length = Integer(
        8, config=True, help="The shortest password the coursevm/password page accepts.")

    def student_override(self):
        """The student's record when it applies, else None."""
        return store.read_override(self.student_password_file, self.hashed_password)

    def effective_hashed_password(self):
        record = self.student_override()
        return record["hashed_password"] if record else self.hashed_password

    def passwd_check(self, password):
        return passwd_check(self.effective_hashed_password(), password)

    def cookie_secret_hook(self, h):
        # As the parent does with its hash: a new password signs every earlier login cookie out at the next start.
        h.update(self.effective_hashed_password().encode())
        return h
