"""Read the course's records and its handout on the controller in one process (role coursevm.openstack.credentials).

Arguments: the secrets folder, the handout CSV, the folder of the handout pages. Prints JSON:
{"records": {path: base64 of every <folder>/*.yml regular file},
 "handout": {path: {"mode": "0600", "content": base64} of the CSV and every <pages>/*.html regular file}}.
One process instead of a find and a slurp per file: the cost no longer grows by a module run per student.
Vault text is passed on as it is; the role decrypts it with its own vault secret.
"""

import base64
import glob
import json
import os
import stat
import sys


def regular_files(pattern):
    for path in sorted(glob.glob(pattern)):
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            yield path, info


def content(path):
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def main(secrets_dir, handout_file, html_dir):
    records = {path: content(path)
               for path, unused_info in regular_files(os.path.join(glob.escape(secrets_dir), "*.yml"))}
    handout = {
        path: {"mode": "%04o" % stat.S_IMODE(info.st_mode), "content": content(path)}
        for pattern in (glob.escape(handout_file), os.path.join(glob.escape(html_dir), "*.html"))
        for path, info in regular_files(pattern)
    }
    print(json.dumps({"records": records, "handout": handout}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
