"""The worker process: loads one submission and answers calls to its functions.

Runs in a child forked by the zygote (Linux, already in its own session), or in a
freshly spawned interpreter talking over pipes (`spawned.py`: any platform).
Everything here is visible to and changeable by student code; that is fine,
because all the worker can do is send values back, and the grader treats every
value as untrusted plain data.
"""

from __future__ import annotations

import ast
import io
import json
import os
import signal
import sys
import time
import traceback
import types

import numpy as np

from grader.worker import codec, probe
from grader.worker.handles import Kept
from grader.worker.watchdog import MAX_NAME, Watchdog, traceback_frames

if sys.platform.startswith("linux"):
    from grader.worker import confine, isolate
else:  # macOS, Windows (the student kit): rlimits and wall-clock limits only
    confine = isolate = None

try:
    import resource
except ImportError:  # Windows: no rlimits; the wall-clock limit still holds
    resource = None


class ImportBlocker:
    """A meta-path finder that refuses the modules the assignment forbids, as if they
    were not installed, and remembers every attempt. It is first on the path, where a
    student can remove it: it is the polite part of the refusal. What enforces it is
    that the forbidden packages are not there (bubblewrap hides them, Landlock refuses
    to read them); the static scan of the source names them in any case."""

    def __init__(self, forbidden):
        self.forbidden = tuple(forbidden)
        self.attempts: list[str] = []

    def _is_forbidden(self, name):
        return any(name == f or name.startswith(f + ".") for f in self.forbidden)

    def find_spec(self, name, path=None, target=None):
        if self._is_forbidden(name):
            if name not in self.attempts:
                self.attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (not allowed in this assignment)", name=name)
        return None


class ToolkitFinder(ImportBlocker):
    """Last on the path: asked only about modules nothing else provides. The toolkit's
    packages are out of reach by their location (hidden or unreadable), so a student's
    own reference.py or grader.py imports as usual; an import of the toolkit's names
    that finds nothing is remembered as an attempt on the toolkit."""


def enter_sandbox(spec: dict) -> dict:
    """Everything that confines this worker, before any student code exists: its own
    namespaces and mounts (under bubblewrap), its uid (as root elsewhere), then Landlock
    and seccomp where the kernel has them. Returns what held, for the grader."""
    held: dict = {"mode": spec.get("mode", "none")}
    if confine is not None:
        if spec.get("mode") == "bwrap":
            isolate.private_mounts(spec["workdir"], spec["scratch"])
            _prctl(PR_SET_DUMPABLE, 1)  # its own process: nothing left to protect from itself
            isolate.drop_capabilities()
            held.update(pid_namespace=True, private_mounts=True, capabilities=False)
        result = confine.Confinement()
        confine.set_no_new_privs(result)
        policy = spec.get("landlock")
        if policy is not None:  # while still root, so that every path can be opened
            base = _ZYGOTE_RULESET
            if base is None and policy.get("read") is not None:  # a spawned worker builds its own
                base = confine.read_ruleset(policy["read"], policy.get("list", []))
            confine.apply_layered(base, policy["write"], result=result)
        uid = spec.get("drop_to_uid")
        if uid is not None and os.geteuid() == 0:
            parent = os.getppid()
            confine.drop_privileges(int(uid), int(uid), keep_read_search=bool(spec.get("keep_read_search")),
                                    result=result)
            # A new uid clears the parent-death signal: ask again, then make sure the
            # parent did not go in between (it would then never be sent).
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                raise OSError("the worker host went away while the worker started")
        confine.apply_seccomp(confine_signals=bool(spec.get("confine_signals")) and not result.signals_scoped,
                              result=result)
        held.update(result.as_dict())
    held["uid"] = os.geteuid() if hasattr(os, "geteuid") else None
    return held


def apply_limits(spec: dict) -> None:
    """Resource limits, working directory and environment of the worker."""
    os.chdir(spec.get("cwd") or spec["workdir"])
    os.environ.clear()
    os.environ.update(spec["env"])
    if resource is None:
        return

    def limit(which, value):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    limit(getattr(resource, "RLIMIT_CORE", -1), 0)
    limit(resource.RLIMIT_AS, int(spec["memory_bytes"]))
    limit(resource.RLIMIT_FSIZE, int(spec["file_size_bytes"]))
    limit(getattr(resource, "RLIMIT_NOFILE", -1), 256)
    soft_cpu = int(spec["cpu_seconds_total"])
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft_cpu, soft_cpu + 5))
    except (ValueError, OSError):
        pass
    if spec.get("limit_processes"):
        # Counted per user namespace and uid (Linux >= 5.14): inside bubblewrap, or as
        # the slot's own uid, this caps a fork bomb without touching the rest of the machine.
        limit(resource.RLIMIT_NPROC, int(spec.get("max_processes", 256)))


PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
_ZYGOTE_RULESET = None  # the read rules a zygote builds once and every worker applies


def _prctl(option: int, value: int) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def prepare_zygote(mode: str, policy: dict | None = None) -> None:
    """In the zygote, once: the Landlock read rules every worker of this slot applies
    (listing the allowed folders costs milliseconds; applying them, microseconds)."""
    global _ZYGOTE_RULESET
    if confine is not None:
        confine.prepare()  # libc functions, seccomp filters: once, not in every worker
    if policy is not None and policy.get("read") is not None and confine is not None:
        _ZYGOTE_RULESET = confine.read_ruleset(policy["read"], policy.get("list", []))


def scrub_toolkit_imports(toolkit_root: str) -> None:
    """Make the toolkit unreachable by `import`: drop its folder from the path (unless
    it is a shared site-packages, where the student's libraries live too), drop
    editable-install finders, and forget the imported `grader` package. The import
    blocker refuses the toolkit's names in any case; this removes the road as well."""
    root = os.path.realpath(toolkit_root)
    shared = os.path.isdir(os.path.join(root, "numpy")) or os.path.basename(root) in ("site-packages",
                                                                                    "dist-packages")
    if not shared:
        sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != root]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in getattr(h, "__module__", "").lower()]
    sys.path_importer_cache.clear()
    # This module and the codec stay loaded (their functions hold them) but are no
    # longer reachable as a package: `import grader` goes through the blocker.
    for name in [m for m in sys.modules if m == "grader" or m.startswith("grader.") or "__editable__" in m]:
        module = sys.modules.pop(name)
        if name in ("grader.worker.serve", "grader.worker.codec"):
            sys.modules["_nngrade_" + name.rsplit(".", 1)[1]] = module


def prepare_imports(spec: dict) -> tuple[ImportBlocker, ToolkitFinder]:
    blocker = ImportBlocker(spec["forbidden_imports"])
    toolkit = ToolkitFinder(spec.get("toolkit_names", ()))
    sys.meta_path.insert(0, blocker)
    sys.meta_path.append(toolkit)
    # The submission's own folders come first, so a helper module it ships imports:
    # the main file's folder (as `python file.py` would), then the copy's root.
    for folder in reversed(dict.fromkeys([spec.get("cwd") or spec["workdir"], spec["workdir"]])):
        sys.path.insert(0, folder)
    sys.dont_write_bytecode = True
    return blocker, toolkit


class Worker:
    def __init__(self, sock, finders: tuple[ImportBlocker, ToolkitFinder], workdir: str):
        self.sock = sock
        self.workdir = workdir
        self.finders = finders
        self.module: types.ModuleType | None = None
        self.kept = Kept()  # values a call was asked to keep (a layer's cache): only handles leave
        self.filename = ""  # the name the student's code was compiled under: its frames carry it
        self.watchdog: Watchdog | None = None

    # -- protocol ------------------------------------------------------------
    def serve_forever(self):
        while True:
            try:
                header, buffers = codec.recv_message(self.sock)
            except (codec.PeerClosed, OSError):
                os._exit(0)
            op = header.get("op")
            if op == "load":
                reply, out = self.load(header), []
            elif op == "probe" and self.module is None:  # a fresh worker, no student code in it
                reply, out = {"ok": True, "held": probe.run(header.get("targets", {}))}, []
            elif op == "call":
                reply, out = self.call(header, buffers)
            else:
                os._exit(0)
            reply["id"] = header.get("id")
            # Bounded, so that a reply stays far inside the grader's limits (it shows 20).
            reply["blocked_imports"] = [name[:200] for finder in self.finders for name in finder.attempts][:20]
            _flush_std()
            if self.watchdog is None:
                codec.send_message(self.sock, reply, out)
                continue
            with self.watchdog.lock:  # no report about this call may follow its reply
                self.watchdog.finish()
                codec.send_message(self.sock, reply, out)

    def _send_report(self, header: dict) -> None:
        codec.send_message(self.sock, header)

    # -- load ----------------------------------------------------------------
    def load(self, header):
        """Run the module's code. In "definitions" mode the source is already reduced
        to definitions, and each statement runs on its own: one that fails (an import
        of a plotting library, say) is left out and the rest still loads."""
        module = types.ModuleType(header["module_name"])
        # Where the copy of the student's file really is, so that a data file beside it opens.
        module.__file__ = os.path.join(self.workdir, header["file_name"])
        self.filename = header["display_name"]
        # Registered under the file's own name, so `import cnn_layers` from a helper works.
        sys.modules[header["module_name"]] = module
        skipped = []
        try:
            if header.get("mode") == "definitions":
                tree = ast.parse(header["source"], header["display_name"])
                for node in tree.body:
                    code = compile(ast.Module([node], []), header["display_name"], "exec", dont_inherit=True)
                    try:
                        exec(code, module.__dict__)
                    except Exception as exc:  # noqa: BLE001 - leave this statement out, go on
                        skipped.append({"line": node.lineno, "type": type(exc).__name__[:200],
                                        "message": str(exc)[:300]})
            else:
                code = compile(header["source"], header["display_name"], "exec", dont_inherit=True)
                exec(code, module.__dict__)
        except MemoryError:
            return {"ok": False, "kind": "memory", "message": "ran out of memory while loading"}
        except BaseException as exc:  # noqa: BLE001 - SystemExit and friends too
            return {"ok": False, **describe_exception(exc, header["display_name"])}
        finally:
            _flush_std()
        self.module = module
        found, params = {}, {}
        for name in header["functions"]:
            obj = module.__dict__.get(name)
            found[name] = "missing" if obj is None else ("function" if callable(obj) else "not_callable")
            params[name] = _parameters(obj)
        # the grader notes 20 skipped statements; parameter names only label a failed call
        return {"ok": True, "functions": found, "skipped": skipped[:20], "params": params}

    # -- call ----------------------------------------------------------------
    def call(self, header, buffers):
        name = header["fn"]
        fn = None if self.module is None else self.module.__dict__.get(name)
        if fn is None or not callable(fn):
            return {"ok": False, "kind": "missing", "message": f"{name} is not defined"}, []
        try:
            args = codec.decode(header["args"], buffers, allow_rng=True)
            kwargs = codec.decode(header["kwargs"], buffers, allow_rng=True)
            args = list(self.kept.replace_in(tuple(args)))
        except codec.CodecError as exc:
            return {"ok": False, "kind": "internal", "message": str(exc)}, []
        except KeyError as exc:  # a handle no longer kept
            return {"ok": False, "kind": "bad_return", "message": str(exc)}, []
        before = [(key, value.copy()) for key, value in _arrays_in(args, kwargs)]
        _renew_cpu_budget(float(header.get("cpu_seconds", 10)))
        report_after = header.get("report_after")
        if type(report_after) in (int, float) and self.filename:
            if self.watchdog is None:
                self.watchdog = Watchdog(self._send_report, self.filename)
            self.watchdog.start(header.get("id"), float(report_after))
        started = time.perf_counter()
        try:
            value = fn(*args, **kwargs)
        except MemoryError:
            return {"ok": False, "kind": "memory", "message": f"{name} ran out of memory"}, []
        except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
            return {"ok": False, "kind": "exit", "message": f"{name} tried to exit ({type(exc).__name__})"}, []
        except BaseException as exc:  # noqa: BLE001
            return {"ok": False, **describe_exception(exc, self.filename or None)}, []
        seconds = time.perf_counter() - started
        mutated = [key for key, copy in before if not _same(copy, _lookup(args, kwargs, key))]
        keep = header.get("keep")
        if isinstance(keep, list) and all(type(i) is int for i in keep):
            value = self.kept.keep_from(value, tuple(keep))
        try:
            tree, out = codec.encode(value)
        except codec.CodecError as exc:
            return {"ok": False, "kind": "bad_return", "message": str(exc)}, []
        except MemoryError:
            return {"ok": False, "kind": "memory", "message": f"{name} returned more than fits in memory"}, []
        # The grader refuses a reply over codec.MAX_REPLY_BYTES (and kills the worker): an
        # honest value that large is told here instead, plainly.
        size = sum(map(len, out)) + 8 * len(out)
        room = codec.MAX_REPLY_BYTES - codec.MAX_REPLY_HEADER_BYTES
        if size > room or len(out) > codec.MAX_NODES:
            return {"ok": False, "kind": "bad_return",
                    "message": f"an enormous value ({codec.mib(size)} of arrays; at most {codec.mib(room)} "
                               "can be sent back)"}, []
        if len(json.dumps(tree, separators=(",", ":"))) > codec.MAX_REPLY_HEADER_BYTES // 2:
            return {"ok": False, "kind": "bad_return",
                    "message": "an enormous value (too many numbers outside arrays to send back)"}, []
        return {"ok": True, "value": tree, "mutated": mutated, "seconds": seconds}, out


def describe_exception(exc: BaseException, display_name: str | None) -> dict:
    """Type, message, the line in the student's file, the innermost frames in that file
    (`where`, innermost first), and a short traceback."""
    kind = "exit" if isinstance(exc, (SystemExit, KeyboardInterrupt)) else "raised"
    line = None
    if isinstance(exc, SyntaxError):
        line = exc.lineno
    frames = traceback.extract_tb(exc.__traceback__)
    student_frames = [f for f in frames if not f.filename.endswith(("serve.py", "codec.py"))]
    if line is None and student_frames:
        line = student_frames[-1].lineno
    text = "".join(traceback.format_list(student_frames[-5:]))
    message = str(exc)
    return {
        "kind": kind,
        "type": type(exc).__name__[:200],
        "bases": [c.__name__[:200] for c in type(exc).__mro__][:20],
        "message": message[:2000],
        "line": line,
        "where": traceback_frames(exc.__traceback__, display_name) if display_name else [],
        "traceback": text[-4000:],
    }


def _parameters(fn) -> list[str]:
    """The positional parameter names of a plain function (to label its arguments on a
    page); [] for anything else."""
    if type(fn) is not types.FunctionType:  # no attribute of a student's object is looked up
        return []
    code = fn.__code__
    return [name[:MAX_NAME] for name in code.co_varnames[:code.co_argcount]][:16]


def _arrays_in(args, kwargs):
    for i, v in enumerate(args):
        if isinstance(v, np.ndarray):
            yield i, v
    for k, v in kwargs.items():
        if isinstance(v, np.ndarray):
            yield k, v


def _lookup(args, kwargs, key):
    return args[key] if isinstance(key, int) else kwargs[key]


def _same(a, b):
    try:
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=True))
    except Exception:  # noqa: BLE001 - anything odd counts as changed
        return False


def _renew_cpu_budget(seconds: float) -> None:
    """Let this call use `seconds` more CPU time; past it the kernel sends SIGXCPU."""
    if resource is None:
        return
    try:
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        want = int(spent + seconds) + 2
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
    except (ValueError, OSError):
        pass


def _flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a student may have replaced the stream
            pass


def run(sock, spec: dict) -> None:
    """Entry point in the forked child: the sandbox first, then serve until told to stop.
    The first frame says whether the sandbox holds; no student code exists before it."""
    try:
        held = enter_sandbox(spec)
        apply_limits(spec)
        finders = prepare_imports(spec)
    except Exception as exc:  # noqa: BLE001 - refuse to serve in a sandbox that failed
        codec.send_message(sock, {"op": "failed", "message": f"{type(exc).__name__}: {exc}"[:2000]})
        raise
    codec.send_message(sock, {"op": "ready", "held": held})
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    Worker(sock, finders, spec["workdir"]).serve_forever()
