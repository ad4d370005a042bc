"""Which protections held in this run, measured before anyone is graded.

`preflight` starts one worker in the run's sandbox, with no student code in it, and
has it attack the sandbox (`grader.worker.probe`): read the solution, a classmate's
file and the run's record, write the record, signal and trace the grader, reach a
loopback listener, load a forbidden package with the import hooks removed. What got
through is what a student's code could do too. If no worker can start at all (an
interpreter the sandbox hides, say), grading stops before it begins, with one line.

The outcome goes to results.json (`protections`) and the run's summary.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
from pathlib import Path

from grader.models import Protection
from grader.sandbox import TOOLKIT_ROOT, Limits, OutputCapture, SandboxConfig, SandboxUnavailable, SlotPool

# name -> (what holds, in the summary's words)
PROTECTIONS = {
    "solution": "the solution and the hidden checks cannot be read",
    "classmates": "other submissions cannot be read or changed",
    "record": "the run's record (journal, results, key) cannot be read or written",
    "processes": "the grader and the worker host cannot be signalled or traced",
    "network": "no network",
    "forbidden_imports": "forbidden packages and the toolkit cannot be loaded, whatever the code does to imports",
    "privileges": "no root and no capabilities",
    "own_namespace": "each submission in PID and mount namespaces of its own, torn down from outside",
    "leftovers": "nothing a submission starts outlives it",
}


class _Listeners:
    """A TCP and a UDP socket on loopback that count what reaches them."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4)
        self.tcp.settimeout(0.05)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.05)
        self.reached: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for name, sock, take in (("tcp", self.tcp, lambda s: s.accept()[0].close()),
                                     ("udp", self.udp, lambda s: s.recvfrom(64))):
                try:
                    take(sock)
                    self.reached.append(name)
                except OSError:
                    pass

    def ports(self) -> tuple[int, int]:
        return self.tcp.getsockname()[1], self.udp.getsockname()[1]

    def close(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        self.tcp.close()
        self.udp.close()
        return self.reached


def probe_targets(config: SandboxConfig, solution: list[Path], classmates: list[Path], record: list[Path],
                  out: Path) -> dict:
    return {
        "read": {"solution": [str(p) for p in solution if p.exists()],
                 "classmates": [str(p) for p in classmates if p.exists()],
                 "record": [str(p) for p in record if p.exists()]},
        "write": {"record": [str(p) for p in [*record, out] if p.exists()],
                  "classmates": [str(p) for p in classmates if p.is_dir()]},
        "imports": [name for name in config.forbidden if config.forbidden_paths],
        "toolkit_root": str(TOOLKIT_ROOT),
    }


def preflight(config: SandboxConfig, limits: Limits, targets: dict) -> list[Protection]:
    """Start a worker in the run's sandbox and measure what holds. Raises
    SandboxUnavailable (one line) when no worker can run there."""
    listeners = _Listeners()
    pool = SlotPool(1, config)
    try:
        slot = pool.acquire()
        workdir = slot.new_workdir([])
        worker = slot.spawn(workdir, limits, OutputCapture())
        tcp, udp = listeners.ports()
        zygote = [slot.zygote.proc.pid] if slot.zygote is not None else []
        marker = str(9_000_000 + secrets.randbelow(999_999))
        header = {"op": "probe", "targets": {**targets, "tcp": tcp, "udp": udp, "leftover": marker,
                                             "processes": [os.getpid(), *zygote]}}
        try:
            reply, _ = worker.request(header, [], max(10.0, limits.call_timeout))
            _round_trip(worker, limits)
        except SandboxUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the worker died or hung: the sandbox cannot run it
            raise SandboxUnavailable(f"a worker started but did not work ({type(exc).__name__}: {exc})") from None
        finally:
            worker.kill()
            slot.cleanup(workdir)
        held, facts = reply.get("held") or {}, dict(worker.held)
        left = _survivors(f"sleep {marker}")
        held["leftovers"] = {"held": not left, "seen": [f"a detached process ({pid}) outlived its worker"
                                                       for pid in left]}
    finally:
        pool.close()
        reached = listeners.close()
    if reached:
        held["network"] = {"held": False, "seen": [f"a {r} connection reached the grader" for r in reached]}
    held["own_namespace"] = {"held": bool(facts.get("pid_namespace")), "seen": []}
    return [Protection(name=name, held=bool(held.get(name, {}).get("held")), what=what,
                       how=_how(name, config.mode, facts),
                       seen=[str(s)[:300] for s in held.get(name, {}).get("seen", [])][:10])
            for name, what in PROTECTIONS.items()]


def _survivors(command: str) -> list[int]:
    """Processes running `command` (killed on sight: the probe's own leftovers)."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().replace(b"\0", b" ").strip() == command.encode():
                    found.append(int(entry))
                    os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    return found


TRIVIAL = "import numpy as np\n\ndef f(x):\n    return np.tanh(x) * 2.0, {'n': len(x)}\n"


def _round_trip(worker, limits: Limits) -> None:
    """Load a trivial module and call it, as grading will: arguments and an array back
    through the codec, NumPy's lazily loaded parts included. A sandbox that cannot do
    this would fail every student alike."""
    import numpy as np

    from grader.worker import codec

    load = {"op": "load", "mode": "full", "source": TRIVIAL, "display_name": "preflight.py",
            "module_name": "preflight", "file_name": "preflight.py", "functions": ["f"]}
    reply, _ = worker.request(load, [], max(10.0, limits.load_timeout))
    if reply.get("ok") is not True:
        raise SandboxUnavailable(f"a trivial module did not load: {reply.get('type')}: {reply.get('message')}")
    x = np.linspace(-1.0, 1.0, 5)
    tree, buffers = codec.encode(([x], {}), allow_rng=True)
    args, kwargs = tree["tuple"]
    reply, out = worker.request({"op": "call", "fn": "f", "args": args, "kwargs": kwargs,
                                 "cpu_seconds": limits.call_timeout}, buffers, max(10.0, limits.call_timeout))
    if reply.get("ok") is not True:
        raise SandboxUnavailable(f"a trivial call failed: {reply.get('type')}: {reply.get('message')}")
    y, info = codec.decode(reply["value"], out)
    if not np.allclose(y, np.tanh(x) * 2.0) or info != {"n": 5}:
        raise SandboxUnavailable("a trivial call returned a wrong value")


def _how(name: str, mode: str, facts: dict) -> str:
    """The mechanisms behind a protection in this mode, as the worker reported them."""
    ways = []
    if mode == "bwrap":
        ways.append({"own_namespace": "PID, mount and IPC namespaces per submission",
                     "network": "a network namespace with no interface"}.get(name, "bubblewrap"))
    if facts.get("filesystem") and name in ("solution", "classmates", "record", "forbidden_imports"):
        ways.append(f"Landlock ABI {facts.get('landlock_abi')}")
    if facts.get("signals_scoped") and name == "processes":
        ways.append("Landlock signal scoping")
    if facts.get("tcp") and name == "network":
        ways.append("Landlock TCP rules")
    if facts.get("seccomp") and name in ("network", "processes"):
        ways.append("seccomp")
    if facts.get("uid") not in (None, 0) and name in ("processes", "privileges", "record"):
        ways.append(f"uid {facts.get('uid')}")
    return ", ".join(ways) or "nothing"


def summary_lines(mode: str, protections: list[Protection]) -> list[str]:
    held = [p for p in protections if p.held]
    lost = [p for p in protections if not p.held]
    lines = [f"Sandbox '{mode}': held: " + ("; ".join(p.what for p in held) or "nothing")]
    for p in lost:
        detail = f" (seen: {', '.join(p.seen[:2])})" if p.seen else ""
        lines.append(f"NOT held in this run: {p.what}{detail}")
    return lines
