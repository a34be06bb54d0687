"""GET/POST <base_url>coursevm/password: the student's own password page, behind their current login."""

import asyncio
import hashlib
import hmac
from html import escape

from jupyter_server.auth.security import passwd
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from . import store
from .identity import CourseVMPasswordIdentityProvider

# A wrong current password costs the asker this long: a stolen session cannot guess the password quickly.
WRONG_CURRENT_DELAY = 1.0

STATUS = {store.CHANGED: 200, store.WRONG_CURRENT: 403, store.MISMATCH: 400, store.TOO_SHORT: 400,
          store.TOO_LONG: 400, store.EDGE_WHITESPACE: 400, store.NOT_SAVED: 500, "unavailable": 503}

MESSAGES = {
    store.CHANGED: "Your password is changed. Use the new one from now on; other browsers logged in with the "
                   "old one are logged out.",
    store.WRONG_CURRENT: "The current password is not right. Nothing was changed.",
    store.MISMATCH: "The new password and its repetition differ. Nothing was changed.",
    store.TOO_SHORT: "The new password is too short (at least {min_length} characters). Nothing was changed.",
    store.TOO_LONG: "The new password is too long (at most {max_length} characters). Nothing was changed.",
    store.EDGE_WHITESPACE: "The new password may not start or end with a space. Nothing was changed.",
    store.NOT_SAVED: "The new password could not be saved; your old one still works. Tell the course team.",
    "unavailable": "Changing the password is not set up on this server. Ask the course team.",
}

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Change your Jupyter password</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em; color: #222; }}
 label {{ display: block; margin-top: 1em; }} input[type=password] {{ width: 100%; padding: .4em; }}
 button {{ margin-top: 1.5em; padding: .5em 1.5em; }}
 .result {{ padding: .6em; border-radius: 4px; }} .ok {{ background: #e6f4ea; }} .refused {{ background: #fce8e6; }}
</style></head>
<body data-min-length="{min_length}">
<h1>Change your Jupyter password</h1>
{result}
<p>At least {min_length} characters, not starting or ending with a space. It works at once, and from then on
the password on your handout does not. If you forget it, the course team can give you a new one.</p>
<form method="post" action="{action}" autocomplete="off">
{xsrf}
<label>Current password <input type="password" name="current_password" id="current_password"
 autocomplete="current-password"></label>
<label>New password <input type="password" name="new_password" id="new_password" autocomplete="new-password"></label>
<label>New password again <input type="password" name="repeat_password" id="repeat_password"
 autocomplete="new-password"></label>
<button type="submit" id="change_password">Change password</button>
</form>
<p><a href="{home}">Back to Jupyter</a></p>
</body></html>
"""


class PasswordChangeHandler(JupyterHandler):
    """Asks for the current password and the new one twice; never echoes or logs any of them."""

    def _provider(self):
        provider = self.identity_provider
        return provider if isinstance(provider, CourseVMPasswordIdentityProvider) else None

    def _page(self, result=None):
        provider = self._provider()
        if provider is None:
            result = "unavailable"
        min_length = provider.min_password_length if provider else 0
        self.set_status(STATUS[result] if result else 200)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        box = ""
        if result:
            text = MESSAGES[result].format(min_length=min_length, max_length=store.MAX_LENGTH)
            box = '<p class="result %s" id="result" role="status" data-result="%s">%s</p>' % (
                "ok" if result == store.CHANGED else "refused", escape(result), escape(text))
        self.finish(PAGE.format(
            min_length=int(min_length), result=box, action=escape(self.request.path),
            xsrf=self.xsrf_form_html(), home=escape(self.base_url)))

    @web.authenticated
    def get(self):
        self._page()

    @web.authenticated
    async def post(self):
        provider = self._provider()
        if provider is None:
            self._page("unavailable")
            return
        # strip=False: what the student typed, exactly (store.new_password_problem refuses edge spaces).
        current = self.get_body_argument("current_password", "", strip=False)
        new = self.get_body_argument("new_password", "", strip=False)
        repeat = self.get_body_argument("repeat_password", "", strip=False)
        loop = asyncio.get_running_loop()
        # argon2 takes a noticeable moment: off the event loop, so other requests and kernels carry on.
        if not await loop.run_in_executor(None, provider.passwd_check, current.strip()):
            self.log.warning("coursevm_password: refused a password change (wrong current password)")
            await asyncio.sleep(WRONG_CURRENT_DELAY)
            self._page(store.WRONG_CURRENT)
            return
        problem = store.new_password_problem(new, repeat, provider.min_password_length)
        if problem:
            self._page(problem)
            return
        hashed = await loop.run_in_executor(None, passwd, new, "argon2")
        try:
            store.write_override(provider.student_password_file, hashed, provider.hashed_password)
        except OSError as exc:
            self.log.error("coursevm_password: could not save the new password hash in %s: %s",
                           provider.student_password_file, exc.strerror)
            self._page(store.NOT_SAVED)
            return
        self._sign_out_other_sessions(provider, hashed)
        self.log.info("coursevm_password: the student changed their password")
        self._page(store.CHANGED)

    def _sign_out_other_sessions(self, provider, hashed):
        """Login cookies are signed with the cookie secret: a new secret invalidates every one (a session someone
        else opened with the old password included); this browser gets a fresh cookie and stays logged in."""
        settings = self.application.settings
        settings["cookie_secret"] = hmac.new(settings["cookie_secret"], hashed.encode(), hashlib.sha256).digest()
        provider.set_login_cookie(self, self.current_user)
