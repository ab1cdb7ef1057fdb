"""A server process the benchmark starts (gunicorn in bench/run.py, Datasette in
bench/datasette.py): wait until it answers, and stop it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Served:
    """Set by the subclass: `proc` (the process), `handle` (its log file, open), `log` (its
    path), `base` (its URL) and `name` (for messages)."""

    proc: subprocess.Popen
    handle: object
    log: Path
    base: str
    name: str

    def wait_answers(self, path: str, timeout: float = 60) -> None:
        """Wait until GET `path` answers 200; exit the benchmark with the log's tail if the
        process exits or does not answer within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"bench: {self.name} exited ({self.proc.returncode}):\n{tail(self.log)}")
            try:
                with urllib.request.urlopen(self.base + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"bench: {self.name} did not answer {path} within {timeout:.0f} s:\n{tail(self.log)}")

    def stop(self) -> None:
        """SIGTERM (a gunicorn master stops its workers), then kill after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.handle.close()  # type: ignore[attr-defined]
