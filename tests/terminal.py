"""Run convcalc under a real pseudo-terminal of a given width, as a person's terminal runs it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_terminal(args: list[str], columns: int, cwd: str | None = None, timeout: float = 120
                    ) -> tuple[int, list[str]]:
    """``python -m convcalc ARGS`` with stdout and stderr on a pty ``columns`` wide: its exit code and the
    lines it showed, colours removed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen([sys.executable, "-m", "convcalc", *args], stdin=follower, stdout=follower,
                               stderr=follower, cwd=cwd, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the pty closes when the child exits
            break
        if not data:
            break
        chunks.append(data)
    code = process.wait(timeout)
    os.close(leader)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")
    return code, text.rstrip("\n").split("\n")
