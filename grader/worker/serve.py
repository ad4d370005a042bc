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
import os
import sys
import time
import traceback
import types

import numpy as np

from grader.worker import codec

try:
    import resource
except ImportError:  # Windows: no rlimits; the wall-clock limit still holds
    resource = None


class ImportBlocker:
    """A meta-path finder that refuses the modules the assignment forbids, as if
    they were not installed, and remembers every attempt."""

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


def apply_limits(spec: dict) -> None:
    """Resource limits, working directory and environment of the worker."""
    os.chdir(spec["workdir"])
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
        # Counted per user namespace (Linux >= 5.14): inside bubblewrap, or as nobody,
        # this caps a fork bomb without touching the rest of the machine.
        limit(resource.RLIMIT_NPROC, int(spec.get("max_processes", 256)))
    uid = spec.get("drop_to_uid")
    if uid is not None and os.geteuid() == 0:
        # As root, the worker becomes an unprivileged user: it can then neither
        # signal the grader nor write the instructor's files.
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


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


def prepare_imports(spec: dict) -> ImportBlocker:
    blocker = ImportBlocker(spec["forbidden_imports"])
    sys.meta_path.insert(0, blocker)
    # The submission's own folder comes first, so a helper module it ships imports.
    sys.path.insert(0, spec["workdir"])
    sys.dont_write_bytecode = True
    return blocker


class Worker:
    def __init__(self, sock, blocker: ImportBlocker):
        self.sock = sock
        self.blocker = blocker
        self.module: types.ModuleType | None = None

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
            elif op == "call":
                reply, out = self.call(header, buffers)
            else:
                os._exit(0)
            reply["id"] = header.get("id")
            reply["blocked_imports"] = list(self.blocker.attempts)
            _flush_std()
            codec.send_message(self.sock, reply, out)

    # -- load ----------------------------------------------------------------
    def load(self, header):
        """Run the module's code. In "definitions" mode the source is already reduced
        to definitions, and each statement runs on its own: one that fails (an import
        of a plotting library, say) is left out and the rest still loads."""
        module = types.ModuleType(header["module_name"])
        module.__file__ = os.path.join(os.getcwd(), header["file_name"])
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
                        skipped.append({"line": node.lineno, "type": type(exc).__name__,
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
        found = {}
        for name in header["functions"]:
            obj = module.__dict__.get(name)
            found[name] = "missing" if obj is None else ("function" if callable(obj) else "not_callable")
        return {"ok": True, "functions": found, "skipped": skipped}

    # -- call ----------------------------------------------------------------
    def call(self, header, buffers):
        name = header["fn"]
        fn = None if self.module is None else self.module.__dict__.get(name)
        if fn is None or not callable(fn):
            return {"ok": False, "kind": "missing", "message": f"{name} is not defined"}, []
        try:
            args = codec.decode(header["args"], buffers, allow_rng=True)
            kwargs = codec.decode(header["kwargs"], buffers, allow_rng=True)
        except codec.CodecError as exc:
            return {"ok": False, "kind": "internal", "message": str(exc)}, []
        before = [(key, value.copy()) for key, value in _arrays_in(args, kwargs)]
        _renew_cpu_budget(float(header.get("cpu_seconds", 10)))
        started = time.perf_counter()
        try:
            value = fn(*args, **kwargs)
        except MemoryError:
            return {"ok": False, "kind": "memory", "message": f"{name} ran out of memory"}, []
        except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
            return {"ok": False, "kind": "exit", "message": f"{name} tried to exit ({type(exc).__name__})"}, []
        except BaseException as exc:  # noqa: BLE001
            return {"ok": False, **describe_exception(exc, None)}, []
        seconds = time.perf_counter() - started
        mutated = [key for key, copy in before if not _same(copy, _lookup(args, kwargs, key))]
        try:
            tree, out = codec.encode(value)
        except codec.CodecError as exc:
            return {"ok": False, "kind": "bad_return", "message": str(exc)}, []
        except MemoryError:
            return {"ok": False, "kind": "memory", "message": f"{name} returned more than fits in memory"}, []
        if sum(map(len, out)) > codec.MAX_TOTAL_BYTES // 2:
            return {"ok": False, "kind": "bad_return", "message": f"{name} returned an enormous value"}, []
        return {"ok": True, "value": tree, "mutated": mutated, "seconds": seconds}, out


def describe_exception(exc: BaseException, display_name: str | None) -> dict:
    """Type, message, the line in the student's file, and a short traceback."""
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
        "type": type(exc).__name__,
        "bases": [c.__name__ for c in type(exc).__mro__][:20],
        "message": message[:2000],
        "line": line,
        "traceback": text[-4000:],
    }


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
    """Entry point in the forked child: limits first, then serve until told to stop."""
    apply_limits(spec)
    blocker = prepare_imports(spec)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    Worker(sock, blocker).serve_forever()
