"""Run untrusted generated Python in a separate, resource-limited process.

`run_program(source)` writes the source to a fresh temporary directory, runs it with the
same interpreter (`python -I -S program.py`, so no user site-packages, no `PYTHON*`
variables, no third-party packages) and returns a typed `RunResult`. It never raises
because of what the program does; only a bad argument raises.

What is enforced (see docs/SANDBOX.md for the measured details):

- always: a new session / process group killed with SIGKILL on timeout, on too much
  output and after the program ends; rlimits RLIMIT_AS (memory), RLIMIT_CPU,
  RLIMIT_FSIZE (size of any file written), RLIMIT_CORE = 0; a minimal environment;
  stdout and stderr read in chunks and capped.
- when started as root on Linux and `unshare(2)` is allowed (the case on our machines):
  new network, mount and PID namespaces (no network at all, not even loopback; every
  process the program starts dies with it), fresh size-capped tmpfs over /tmp,
  /var/tmp, /dev/shm, /run/lock and the working directory, and the program runs as
  `nobody` with RLIMIT_NPROC, so it cannot write or delete anything of root's.

What it is not: a container or a VM. It cannot stop the program reading world-readable
files, and without root (or where namespaces are refused) it cannot stop writes the user
could make or network use. Kernel exploits are out of scope.

Departure from the usual `preexec_fn`: limits are set by a tiny trusted launcher
(`_LAUNCHER`, run with `-c`) that then execs the program, because `preexec_fn` is unsafe
when the caller has threads (we run many programs from a thread pool).
"""

from __future__ import annotations

import json
import logging
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Status = Literal["passed", "failed", "timeout", "memory", "output_limit", "error"]

MAX_FILE_MB = 16  # RLIMIT_FSIZE: largest file the program may write
TMPFS_MB = 64  # size of each private tmpfs (working directory, /tmp, ...)
MAX_PROCS = 64  # RLIMIT_NPROC for the unprivileged user (shared by concurrent runs)
SETUP_FAILED_RC = 125  # launcher exit code when it could not set the sandbox up
_SETUP_MARK = b"eapo-sandbox: setup failed"
_CHUNK = 65536


@dataclass(frozen=True)
class RunResult:
    """Outcome of one program.

    `status` is "passed" (exit code 0), "failed" (any other exit), "timeout" (wall clock
    or CPU limit), "memory" (MemoryError under RLIMIT_AS), "output_limit" (stdout plus
    stderr beyond `max_output_bytes`) or "error" (the sandbox itself failed).
    `returncode` is negative for a signal, as in `subprocess`; None if never started.
    """

    ok: bool
    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float


# Trusted launcher, run as the calling user with `python -I -S -c`. argv[1] is JSON config.
# It reads the program, unshares namespaces (best effort), forks the program's process
# (PID 1 of the new PID namespace), mounts private tmpfs, sets rlimits, drops to nobody
# and execs. The launcher waits and exits the way the program did.
_LAUNCHER = r"""
import ctypes, json, os, resource, signal, sys
cfg = json.loads(sys.argv[1])
work = cfg["workdir"]
with open(os.path.join(work, "program.py"), "rb") as f:
    src = f.read()
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
NS = 0x00020000 | 0x20000000 | 0x40000000  # CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
isolated = cfg["isolate"] and os.geteuid() == 0 and libc.unshare(NS) == 0

def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), "mount " + target)

def child():
    python = cfg["python"]
    if isolated:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the launcher
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        opts = "size=%dm,mode=1777" % cfg["tmpfs_mb"]
        for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"):
            if os.path.isdir(d) and not os.path.islink(d):
                mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, opts)
        os.makedirs(work, exist_ok=True)
        mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, "size=%dm,mode=700" % cfg["tmpfs_mb"])
        with open(os.path.join(work, "program.py"), "wb") as f:
            f.write(src)
        # The interpreter may live under a directory nobody cannot enter (/root/...):
        # bind its prefix read-only at a neutral place.
        prefix = os.path.join("/tmp", ".eapo-python")
        os.makedirs(prefix)
        mount(cfg["prefix"], prefix, None, MS_BIND | MS_REC)
        mount(None, prefix, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        python = os.path.join(prefix, os.path.relpath(python, cfg["prefix"]))
        os.chown(work, 65534, 65534)
        os.chown(os.path.join(work, "program.py"), 65534, 65534)
    os.chdir(work)
    for name, value in cfg["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if isolated:
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    os.execve(python, [python, "-I", "-S", "program.py"], cfg["env"])

pid = os.fork()
if pid == 0:
    try:
        child()
    except BaseException as e:
        os.write(2, ("eapo-sandbox: setup failed: %r\n" % (e,)).encode())
    os._exit(125)
_, status = os.waitpid(pid, 0)
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        signal.signal(sig, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL, SIGSTOP: default already, cannot be set
        pass
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)
os._exit(os.WEXITSTATUS(status))
"""


def _minimal_env(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": "/tmp"}


def run_program(
    source: str,
    *,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    cpu_s: float | None = None,
    max_output_bytes: int = 65536,
    env: dict[str, str] | None = None,
    isolate: bool = True,
) -> RunResult:
    """Run `source` as `__main__` of a fresh interpreter under limits.

    `cpu_s` defaults to `timeout_s` + 1 (a backstop; the wall clock decides first).
    `env` replaces the minimal environment (PATH, LANG, HOME, TMPDIR). `isolate=False`
    skips the namespaces and the switch to `nobody` (for debugging only).

    >>> run_program("print(6 * 7)").stdout
    '42\\n'
    """
    if timeout_s <= 0 or memory_mb <= 0 or max_output_bytes <= 0:
        raise ValueError("timeout_s, memory_mb and max_output_bytes must be positive")
    cpu = math.ceil(timeout_s + 1 if cpu_s is None else cpu_s)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eapo-sandbox-") as workdir:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as f:
            f.write(source)
        python = os.path.realpath(sys.executable)
        cfg = {
            "workdir": workdir,
            "python": python,
            "prefix": os.path.realpath(sys.base_prefix),
            "isolate": isolate,
            "tmpfs_mb": TMPFS_MB,
            "nproc": MAX_PROCS,
            "env": _minimal_env(workdir) if env is None else dict(env),
            "limits": {
                "RLIMIT_AS": memory_mb * 2**20,
                "RLIMIT_CPU": cpu,
                "RLIMIT_FSIZE": MAX_FILE_MB * 2**20,
                "RLIMIT_CORE": 0,
            },
        }
        try:
            proc = subprocess.Popen(
                [python, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=_minimal_env(workdir),
                start_new_session=True,
            )
        except OSError as e:
            return RunResult(False, "error", None, "", f"could not start: {e}", 0.0)
        out, err, limit = _collect(proc, start + timeout_s, max_output_bytes)
        returncode = _finish(proc)
    wall = time.monotonic() - start
    status = _classify(limit, returncode, err)
    return RunResult(
        status == "passed",
        status,
        returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        wall,
    )


def _collect(
    proc: subprocess.Popen[bytes], deadline: float, cap: int
) -> tuple[bytes, bytes, Status | None]:
    """Read both pipes until EOF, the deadline or `cap` bytes in all; kill on a limit."""
    bufs = {"out": bytearray(), "err": bytearray()}
    total = 0
    limit: Status | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "out")  # type: ignore[arg-type]
        sel.register(proc.stderr, selectors.EVENT_READ, "err")  # type: ignore[arg-type]
        while sel.get_map() and limit is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                limit = "timeout"
                break
            for key, _ in sel.select(timeout=remaining):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                room = cap - total
                bufs[key.data] += chunk[:room]
                total += len(chunk)
                if total > cap:
                    limit = "output_limit"
                    break
    # Pipes closed (or a limit hit): wait for the launcher within what is left.
    while limit is None and _running(proc):
        if time.monotonic() >= deadline:
            limit = "timeout"
        else:
            time.sleep(0.005)
    _kill_group(proc)
    return bytes(bufs["out"]), bytes(bufs["err"]), limit


def _running(proc: subprocess.Popen[bytes]) -> bool:
    # WNOWAIT: do not reap yet, so the process-group id cannot be reused before killpg.
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return info is None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _finish(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was already sent
        log.warning("sandbox launcher %d did not exit after SIGKILL", proc.pid)
        return None
    finally:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _classify(limit: Status | None, returncode: int | None, stderr: bytes) -> Status:
    if limit is not None:
        return limit
    if returncode is None:
        return "error"
    if returncode == SETUP_FAILED_RC and _SETUP_MARK in stderr:
        return "error"
    if returncode == 0:
        return "passed"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        # We sent no kill (no limit above), so it is RLIMIT_CPU: SIGXCPU at the soft
        # limit, or SIGKILL where the soft one is ignored (PID 1 of a PID namespace).
        return "timeout"
    tail = stderr.rstrip().rsplit(b"\n", 1)[-1]
    if tail.startswith(b"MemoryError"):
        return "memory"
    return "failed"
