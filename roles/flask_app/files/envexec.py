#!/usr/bin/python3
# Managed by Ansible (flask-vps role flask_app): local changes are overwritten.
r"""Run a command with the variables of a systemd-style environment file added.

    envexec.py ENV_FILE COMMAND [ARG...]

The file holds KEY="value" lines in the quoting systemd's EnvironmentFile= reads
(backslash escapes \\ \" \$ \`), so one file serves systemd, supervisor and the
deploy's hooks. Secrets travel from the file into the new process's environment:
never through a command line or a config file that others can read.
The command runs with umask 027 (the systemd unit's UMask=), so files it creates,
such as the database the schema hook makes, are not readable by others.
"""

from __future__ import annotations

import os
import re
import sys

LINE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"$')
ESCAPE = re.compile(r'\\(["\\$`])')


def read_env_file(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as env_file:
        for number, raw in enumerate(env_file, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = LINE.match(line)
            if match is None:
                sys.exit(f"envexec: {path}:{number}: not a KEY=\"value\" line")
            values[match.group(1)] = ESCAPE.sub(r"\1", match.group(2))
    return values


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    env = dict(os.environ)
    env.update(read_env_file(sys.argv[1]))
    os.umask(0o027)
    os.execvpe(sys.argv[2], sys.argv[2:], env)


if __name__ == "__main__":
    main()
