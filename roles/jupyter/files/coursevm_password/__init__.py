"""coursevm_password: a student changes their own Jupyter password at <base_url>coursevm/password.

Shipped by the coursevm.openstack collection (role jupyter), copied into the Jupyter venv, and enabled in
jupyter_server_config.py together with its identity provider:

    c.ServerApp.identity_provider_class = "coursevm_password.identity.CourseVMPasswordIdentityProvider"
    c.CourseVMPasswordIdentityProvider.student_password_file = "/var/lib/jupyter/student-password.json"
    c.ServerApp.jpserver_extensions.update({"coursevm_password": True})
"""

PAGE_PATH = "coursevm/password"


def _jupyter_server_extension_points():
    return [{"module": "coursevm_password"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    from .handlers import PasswordChangeHandler
    from .identity import CourseVMPasswordIdentityProvider

    route = url_path_join(serverapp.web_app.settings["base_url"], PAGE_PATH)
    serverapp.web_app.add_handlers(".*$", [(route, PasswordChangeHandler)])
    if not isinstance(serverapp.identity_provider, CourseVMPasswordIdentityProvider):
        serverapp.log.warning("coursevm_password: ServerApp.identity_provider_class is not "
                              "CourseVMPasswordIdentityProvider; %s answers 503", route)
    else:
        serverapp.log.info("coursevm_password: students change their password at %s", route)
