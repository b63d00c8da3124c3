"""Run `python SCRIPT|-m MODULE|-c CODE ARGS` as a process forked from one that has already imported torch, Lightning
and Hydra, so a test's command costs its own work, not the ~6 s of CPU those imports take in every new interpreter.

Each command still runs in a process of its own (its exit code, its stdout and stderr, no state shared with another
command), with the arguments, folder and environment it was given. What a forked process cannot give, a test asks of a
real interpreter (`run(..., fresh=True)` or plain `subprocess`): a poisoned import path, a signal, a fresh hash seed.
No library forks a warm interpreter per command (pytest-xdist and pytest-forked fork the test, not the command)."""
import atexit
import json
import os
import runpy
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

WARM = ["torch", "pytorch_lightning", "hydra", "omegaconf", "nncompress.job.fit", "nncompress.job.plan",
        "nncompress.job.record"]  # fmt: skip


def _child(request: dict) -> None:
    """Become the command `request` names, as `python ARGV...` would in `cwd` with `env`; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        if request["umask"] is not None:
            os.umask(request["umask"])
        added = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
        threads = request["env"].get("OMP_NUM_THREADS")
        if threads and threads != os.environ.get("OMP_NUM_THREADS"):  # read by torch at its start, so set here
            sys.modules["torch"].set_num_threads(int(threads))
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        argv = request["argv"]
        # sys.path[0] is this file's folder here; a real interpreter puts the script's (or the folder, or "") there
        if argv[0] == "-m":
            sys.argv, sys.path[0:1] = [argv[1], *argv[2:]], [request["cwd"], *added]
            sys.modules.pop(argv[1], None)  # run afresh as __main__, as in a new interpreter (and without runpy's warning)
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif argv[0] == "-c":
            sys.argv, sys.path[0:1] = ["-c", *argv[2:]], ["", *added]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv, sys.path[0:1] = list(argv), [str(Path(argv[0]).resolve().parent), *added]
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as stop:  # as the interpreter treats it: None is 0, a number is the code, else printed and 1
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
        if not isinstance(stop.code, (int, type(None))):
            print(stop.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:  # what the interpreter does at its end: join threads, run atexit hooks, flush
            threading._shutdown()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    """The warm process: import once, then fork one child per request line; answer its pid, then its exit code."""
    for name in WARM:
        __import__(name)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            _child(json.loads(line))
        os.write(1, f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(1, f"{os.waitstatus_to_exitcode(status)}\n".encode())


class Forker:
    """A warm process serving one test process (an xdist worker), started on first use."""

    def __init__(self, root: Path):
        self.root, self.proc, self.lock = root, None, threading.Lock()

    def run(self, argv: list, cwd=None, env=None, timeout: float = 600, umask=None) -> subprocess.CompletedProcess:
        cwd, env = str(cwd or self.root), dict(os.environ if env is None else env)
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            self._start()
            self.proc.stdin.write(json.dumps({"argv": [str(a) for a in argv], "cwd": cwd, "env": env, "umask": umask,
                                              "stdout": str(out), "stderr": str(err)}) + "\n")  # fmt: skip
            self.proc.stdin.flush()
            pid, late = int(self.proc.stdout.readline()), threading.Event()
            timer = threading.Timer(timeout, lambda: (late.set(), os.kill(pid, 9)))
            timer.start()
            try:
                code = int(self.proc.stdout.readline())
            finally:
                timer.cancel()
            if late.is_set():
                raise subprocess.TimeoutExpired([sys.executable, *argv], timeout)
            return subprocess.CompletedProcess([sys.executable, *argv], code, out.read_text(errors="replace"),
                                               err.read_text(errors="replace"))  # fmt: skip

    def _start(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, __file__], cwd=self.root, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


if __name__ == "__main__":
    serve()
