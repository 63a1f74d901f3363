"""Process plumbing shared by the devstack services: ports, paths, launching and stopping.

Every service runs in its own process group (``start_new_session=True``) so that stopping it also
stops whatever it forked, and so that the group id can be written to ``state.json`` and signalled
from another process (``python -m infra.devstack down``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VAR_DIR = REPO_ROOT / "var"
CACHE_DIR = VAR_DIR / "cache"


def log(msg: str) -> None:
    """Progress line on stderr (stdout stays clean for the CLI's machine-readable output)."""
    print(f"[devstack] {msg}", file=sys.stderr, flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (the usual bind-to-0 trick; racy but fine here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def require_free_port(port: int, what: str, host: str = "127.0.0.1") -> None:
    if not port_is_free(port, host):
        raise RuntimeError(f"{what}: port {host}:{port} is already in use")


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    import ctypes

    PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def launch(cmd: list[str], log_path: Path, *, env: dict[str, str] | None = None,
           cwd: Path | None = None, die_with_parent: bool = False) -> subprocess.Popen:
    """Start ``cmd`` in a new session/process group, stdout+stderr appended to ``log_path``.

    ``die_with_parent``: the kernel sends the child SIGTERM when the starting *thread* exits
    (PR_SET_PDEATHSIG), so a test run that is SIGKILLed leaves no JVM behind. Off for detached
    services (``python -m infra.devstack up``), which must outlive their starter.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True, close_fds=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        return True


def group_alive(pgid: int | None) -> bool:
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) succeeds while zombies remain in the group; look for a live member.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        rest = stat.rsplit(b")", 1)[1].split()
        if rest[0] != b"Z" and int(rest[2]) == pgid:
            return True
    return False


def stop_group(pgid: int | None, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group, wait up to ``timeout``, then SIGKILL it; reap ``proc`` if ours."""
    if not pgid:
        return

    def gone() -> bool:
        if proc is not None:
            proc.poll()  # reap our child so it does not linger as a zombie
        return not group_alive(pgid)

    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone():
            break
        time.sleep(0.1)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_deadline = time.monotonic() + 5
        while time.monotonic() < kill_deadline and not gone():
            time.sleep(0.05)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def rss_kib(pid: int) -> int | None:
    """Resident set size of one process, KiB (for status output and measurements)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@contextlib.contextmanager
def file_lock(path: Path):
    """Exclusive advisory lock (two processes fetching into one cache dir must not interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_mvn(args: list[str], what: str, cwd: Path) -> None:
    """Run Maven quietly; on failure raise with its output (Maven's -q hides everything but errors)."""
    cmd = ["mvn", "-B", "-q", *args]
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(cmd)}, in {cwd}):\n{res.stdout[-4000:]}")
    log(f"{what}: done in {time.monotonic() - t0:.1f}s")
