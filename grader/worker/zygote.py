"""The zygote: a clean, pre-warmed interpreter that forks one worker per request.

The grader starts one zygote per job slot (under bubblewrap where available). It
imports NumPy once, so a new worker costs a fork (milliseconds) instead of a fresh
interpreter. It never imports the reference or the assignments, and removes the
toolkit from the import path before any student code exists.

Control protocol, on a Unix socket passed as a file descriptor: one JSON request
per datagram-like message (sent with SCM_RIGHTS where it carries descriptors),
one JSON reply each.
    {"op": "spawn", "spec": {...}} + fds [worker socket, output pipe] -> {"pid": n}
    {"op": "kill", "pid": n}        -> {"status": {...}}   kill its group, then every descendant
    {"op": "status", "pid": n, "wait": seconds} -> {"status": {...} | null}
    {"op": "sweep"}                 -> {"killed": k}        kill every descendant
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def _become_subreaper() -> None:
    """Orphans of a worker (a daemon that double-forked) re-parent to us, not to
    init, so that a sweep can still find and kill them."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _children() -> list[int]:
    me = os.getpid()
    kids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return kids
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: parse after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            kids.append(int(entry))
    return kids


class Zygote:
    def __init__(self, ctl: socket.socket, serve_module):
        self.ctl = ctl
        self.serve = serve_module
        self.statuses: dict[int, dict] = {}
        self.pid = os.getpid()
        self.my_pgid = os.getpgid(0)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.statuses[pid] = _describe(status)

    def wait_for(self, pid: int, seconds: float):
        deadline = time.monotonic() + seconds
        while True:
            self.reap()
            if pid in self.statuses:
                return self.statuses[pid]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.002)

    def kill_group(self, pid: int) -> None:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass

    def sweep(self) -> int:
        """Kill every process descended from us, however it detached itself."""
        killed = 0
        for _ in range(200):
            self.reap()
            kids = _children()
            if not kids:
                break
            for kid in kids:
                try:
                    pgid = os.getpgid(kid)
                    if pgid != self.my_pgid:
                        os.killpg(pgid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    os.kill(kid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
            time.sleep(0.002)
        self.reap()
        return killed

    def spawn(self, spec: dict, fds: list[int]) -> int:
        sock_fd, out_fd = fds
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                os.setsid()
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the zygote gone, the worker goes too
                if os.getppid() != self.pid:
                    os._exit(70)  # it went before we could ask
                self.ctl.close()
                os.dup2(out_fd, 1)
                os.dup2(out_fd, 2)
                os.close(out_fd)
                fd0 = os.open(os.devnull, os.O_RDONLY)
                os.dup2(fd0, 0)
                os.close(fd0)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                self.serve.run(socket.socket(fileno=sock_fd), spec)
            except BaseException:  # noqa: BLE001 - report, then never return into the zygote loop
                import traceback

                traceback.print_exc()
            finally:
                os._exit(70)
        os.close(sock_fd)
        os.close(out_fd)
        return pid

    def serve_forever(self) -> None:
        while True:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(self.ctl, 1 << 20, 4)
            except OSError:
                msg = b""
            if not msg:
                self.sweep()
                os._exit(0)
            request = json.loads(msg)
            op = request.get("op")
            self.reap()
            if op == "spawn":
                reply = {"pid": self.spawn(request["spec"], fds)}
            elif op == "kill":
                pid = int(request["pid"])
                self.kill_group(pid)
                status = self.wait_for(pid, 2.0)
                self.sweep()
                reply = {"status": status}
            elif op == "status":
                reply = {"status": self.wait_for(int(request["pid"]), float(request.get("wait", 0)))}
            elif op == "sweep":
                reply = {"killed": self.sweep()}
            else:
                reply = {"error": f"unknown op {op!r}"}
            self.ctl.sendall(json.dumps(reply).encode())


def _describe(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit": os.WEXITSTATUS(status)}


def main(ctl_fd: int, toolkit_root: str) -> None:
    ctl = socket.socket(fileno=ctl_fd)
    import numpy  # noqa: F401 - the point of the zygote: import it once, fork many times

    from grader.worker import serve  # loaded before the scrub, kept by reference

    serve.scrub_toolkit_imports(toolkit_root)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a grader killed with SIGKILL leaves no zygote behind
    _become_subreaper()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grader's to handle
    Zygote(ctl, serve).serve_forever()
