"""The zygote: a clean, pre-warmed interpreter that forks one worker per request.

The grader starts one zygote per job slot (inside bubblewrap where available). It
imports NumPy once, so a new worker costs a fork (milliseconds) instead of a fresh
interpreter. It never imports the reference or the assignments, and removes the
toolkit from the import path before any student code exists.

No worker can reach it: it is non-dumpable (no process of its uid may trace it or
read its memory); under bubblewrap every worker is PID 1 of a PID namespace of its
own (see `isolate`), where the zygote has no number to signal; elsewhere workers run
as another uid, or under Landlock, whose scopes refuse signals and tracing out of
the worker's domain (`confine`). So its answers can be trusted, and it does the
cleaning up: under bubblewrap by killing the worker, which takes its whole PID
namespace along; elsewhere by killing every descendant (it is their subreaper) and,
when workers run as a uid of their own, every process of that uid.

Control protocol, on a Unix socket passed as a file descriptor: one JSON request
per datagram-like message (sent with SCM_RIGHTS where it carries descriptors),
one JSON reply each.
    {"op": "spawn", "spec": {...}} + fds [worker socket, output pipe] -> {"pid": n}
    {"op": "kill", "pid": n}        -> {"status": {...}}   the worker and all it started
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
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
SETUP_FAILED = 71  # a worker's exit code when its sandbox could not be set up


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
        except (OSError, AttributeError):
            pass


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


def kill_uid(uid: int) -> None:
    """Kill every process of `uid` (a uid only this slot's workers use), from a helper
    that takes that uid: kill(-1) then reaches exactly them, however they detached."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            # A fork racing the first pass is caught by the next; zombies the zygote has
            # yet to reap still count for kill(), so a few passes, not "until none".
            for _ in range(3):
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    break  # ESRCH: none is left
                time.sleep(0.0005)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


class Zygote:
    def __init__(self, ctl: socket.socket, serve_module, isolate_module, mode: str):
        self.ctl = ctl
        self.serve = serve_module
        self.isolate = isolate_module
        self.mode = mode
        self.statuses: dict[int, dict] = {}
        self.pid = os.getpid()
        self.my_pgid = os.getpgid(0)
        self.uids: set[int] = set()  # uids its workers took (none mode, as root)

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
        for uid in self.uids:
            kill_uid(uid)
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
        if spec.get("drop_to_uid") is not None:
            self.uids.add(int(spec["drop_to_uid"]))
        if self.mode != "bwrap":
            pid = os.fork()
            if pid == 0:
                self._become_worker(spec, fds)
            return self._handed_over(pid, fds)
        # Under bubblewrap: a launcher makes a new PID namespace, forks the worker as its
        # PID 1, says its number and exits; the worker, orphaned, is ours (subreaper).
        read_end, write_end = os.pipe()
        launcher = os.fork()
        if launcher == 0:
            try:
                os.close(read_end)
                self.isolate.new_pid_namespace()
                pid = os.fork()
                if pid == 0:
                    os.close(write_end)
                    self._become_worker(spec, fds)
                os.write(write_end, str(pid).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as f:
            answer = f.read()
        self.wait_for(launcher, 5.0)
        self.statuses.pop(launcher, None)
        if not answer:
            for fd in fds:
                os.close(fd)
            raise OSError("the launcher could not start a worker")
        return self._handed_over(int(answer), fds)

    @staticmethod
    def _handed_over(pid: int, fds: list[int]) -> int:
        for fd in fds:
            os.close(fd)
        return pid

    def _become_worker(self, spec: dict, fds: list[int]) -> None:
        """In the forked child: never returns into the zygote's loop."""
        sock_fd, out_fd = fds
        try:
            os.setsid()
            if self.mode != "bwrap":
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the zygote gone, the worker goes too
                if os.getppid() != self.pid:
                    os._exit(SETUP_FAILED)  # it went before we could ask
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
            os._exit(SETUP_FAILED)

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
            try:
                reply = self.handle(op, request, fds)
            except OSError as exc:
                reply = {"error": f"{op}: {exc}"}
            self.ctl.sendall(json.dumps(reply).encode())

    def handle(self, op, request: dict, fds: list[int]) -> dict:
        if op == "spawn":
            return {"pid": self.spawn(request["spec"], fds)}
        if op == "kill":
            pid = int(request["pid"])
            self.kill_group(pid)
            status = self.wait_for(pid, 2.0)
            if self.mode != "bwrap":  # under bubblewrap its PID namespace went with it
                self.sweep()
            return {"status": status}
        if op == "status":
            return {"status": self.wait_for(int(request["pid"]), float(request.get("wait", 0)))}
        if op == "sweep":
            return {"killed": self.sweep()}
        return {"error": f"unknown op {op!r}"}


def _describe(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit": os.WEXITSTATUS(status)}


def main(ctl_fd: int, toolkit_root: str, mode: str) -> None:
    ctl = socket.socket(fileno=ctl_fd)
    import numpy  # noqa: F401 - the point of the zygote: import it once, fork many times

    from grader.worker import isolate, serve  # loaded before the scrub, kept by reference

    # The grader's first message: the read rules its workers apply (none mode).
    init = json.loads(ctl.recv(1 << 24) or b"{}")
    try:
        if mode == "bwrap":
            isolate.enter_user_namespace()
        serve.prepare_zygote(mode, init.get("policy"))
    except Exception as exc:  # noqa: BLE001 - told to the grader, which stops with one line
        ctl.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        raise SystemExit(1) from None
    ctl.sendall(json.dumps({"ok": True}).encode())
    serve.scrub_toolkit_imports(toolkit_root)
    _prctl(PR_SET_DUMPABLE, 0)  # no process of our uid may trace us or read our memory
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a grader killed with SIGKILL leaves no zygote behind
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a worker come back to us, not to init
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grader's to handle
    Zygote(ctl, serve, isolate, mode).serve_forever()
