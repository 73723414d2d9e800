"""Run one README code block in this fresh interpreter (the rules: /work/notes/readme_runner.md, README "Examples").

    python run_block.py KIND BLOCK_FILE [--sandbox NAME]... [--label README.md:23]

KIND is ``python``, ``toml`` or ``shell``. Sandboxes named with ``--sandbox`` are started first (on a loop of their
own in a thread), ``ab.connect(NAME, ...)`` is routed to them, and their settings are exported as environment
variables ``<BACKEND>_<SETTING>``. Any other backend but ``memory`` is refused, so no block reaches a real host.
Exit status 0 = the block passed; otherwise the reason is on stderr.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import inspect
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

COMMAND_TIMEOUT = 60.0
SANDBOX_COMMAND_WAIT = 20.0
PLACEHOLDER = "readme-placeholder"
EXIT_COMMENT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
SETUP_PROGRAMS = {"pip", "nox"}
PIP_TARGET = re.compile(r"^(\.|accounting-bridge)(\[[a-z0-9,-]+\])?$")


class BlockFailed(Exception):
    """The block did not do what the README says."""


# --- sandboxes -------------------------------------------------------------------------------------------------


class SandboxLoop:
    """Sandboxes served from a loop in a daemon thread, while the block runs its own loops in the main thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sandboxes: list[Any] = []

    def run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=COMMAND_TIMEOUT)

    def start(self, backend: str) -> dict[str, Any]:
        from accounting_bridge import sandbox as sandboxes

        async def make() -> Any:
            return sandboxes.create(backend)  # built on the loop that will serve it

        sandbox = self.run(make())
        base_url = self.run(sandbox.start())
        self.sandboxes.append(sandbox)
        return {**sandbox.connect_settings(), "base_url": base_url}

    def close(self) -> None:
        for sandbox in reversed(self.sandboxes):
            self.run(sandbox.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def env_name(backend: str, setting: str) -> str:
    return f"{backend}_{setting}".upper().replace("-", "_")


def export(backend: str, settings: Mapping[str, Any]) -> None:
    for key, value in settings.items():
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            os.environ[env_name(backend, key)] = str(value)


#: `ab.connect` as it was before routing: profiles are only built (no request), whatever their backend
UNROUTED: dict[str, Callable[..., Any]] = {}


def is_loopback(url: Any) -> bool:
    """A base URL on this machine (a sandbox the block started itself): it cannot reach a real backend."""
    from urllib.parse import urlsplit

    return isinstance(url, str) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def route_connect(routes: Mapping[str, Mapping[str, Any]]) -> None:
    """`ab.connect` of a sandboxed backend gets the sandbox's settings over the block's placeholders."""
    import accounting_bridge
    from accounting_bridge import registry

    original: Callable[..., Any] = UNROUTED.setdefault("connect", registry.connect)

    def connect(name: str, **settings: Any) -> Any:
        if name in routes:
            settings = {**settings, **routes[name]}
        elif name != "memory" and not is_loopback(settings.get("base_url")):
            raise BlockFailed(f"the block connects to {name!r}: put <!-- sandbox: {name} --> above it")
        return original(name, **settings)

    registry.connect = connect  # type: ignore[assignment]
    accounting_bridge.connect = connect  # type: ignore[assignment]


@contextmanager
def sandboxes_for(backends: list[str]) -> Iterator[None]:
    if not backends:
        route_connect({})
        yield
        return
    served = SandboxLoop()
    try:
        routes = {backend: served.start(backend) for backend in backends}
        for backend, settings in routes.items():
            export(backend, settings)
        route_connect(routes)
        yield
    finally:
        served.close()


# --- python ----------------------------------------------------------------------------------------------------


def run_python(source: str, label: str) -> None:
    """As a script, or — with top-level await — like a paste into ``python -m asyncio``."""
    code = compile(source, label, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))  # noqa: S307 - the README block is the code under test
    else:
        exec(code, namespace)  # noqa: S102


# --- toml ------------------------------------------------------------------------------------------------------


def parse_toml(source: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        import tomli as tomllib
    return tomllib.loads(source)


def check_toml(source: str, scratch: Path) -> None:
    data = parse_toml(source)
    if {"project", "tool"} & set(data):
        check_pyproject_fragment(data)
    else:
        check_profiles(source, scratch)


def check_pyproject_fragment(data: Mapping[str, Any]) -> None:
    groups = data.get("project", {}).get("entry-points", {})
    for group, entries in groups.items():
        for name, value in entries.items():
            if not re.fullmatch(r"[\w.]+:[\w.]+", str(value)):
                raise BlockFailed(f"entry point {group}.{name} = {value!r} is not 'module:attr'")


def check_profiles(source: str, scratch: Path) -> None:
    from accounting_bridge import registry
    from accounting_bridge.sync.profiles import EnvRef, read_profiles

    path = scratch / "readme-profiles.toml"
    path.write_text(source, encoding="utf-8")
    for profile in read_profiles(path).values():
        wanted = [v.variable for v in profile.settings.values() if isinstance(v, EnvRef)]
        environ = {**{name: PLACEHOLDER for name in wanted}, **os.environ}
        connect = UNROUTED.get("connect", registry.connect)
        ledger = connect(profile.backend, **profile.resolve(environ))  # builds it: no request is sent
        asyncio.run(ledger.aclose())


# --- json data ------------------------------------------------------------------------------------------------


def check_json(source: str, kind: str) -> None:
    """A data block (written to its `file:`): JSON, or JSON Lines (one document per non-empty line)."""
    import json

    documents = [source] if kind == "json" else [line for line in source.splitlines() if line.strip()]
    for number, document in enumerate(documents, start=1):
        try:
            json.loads(document)
        except ValueError as exc:
            raise BlockFailed(f"{kind} document {number} does not parse: {exc}") from None


# --- shell -----------------------------------------------------------------------------------------------------


def shell_commands(source: str, console: bool) -> Iterator[tuple[str, int]]:
    """(command, expected exit status) per command: ``$ `` lines of a console block, every line of sh."""
    for line in source.splitlines():
        text = line.strip()
        if console:
            if not text.startswith("$ "):
                continue
            text = text[2:]
        if not text or text.startswith("#"):
            continue
        expected = 0
        match = EXIT_COMMENT.search(text)
        if match:
            expected, text = int(match.group(1)), text[: match.start()]
        for command in text.split("&&"):
            yield command.strip(), expected


def program_of(argv: list[str]) -> str:
    return os.path.basename(argv[0])


def is_setup(argv: list[str]) -> bool:
    program = program_of(argv)
    if program in SETUP_PROGRAMS:
        return True
    return bool(re.fullmatch(r"python3?(\.\d+)?", program)) and argv[1:3] in (["-m", "venv"], ["-m", "pip"])


def check_setup(argv: list[str]) -> None:
    """Exemption 1: environment set-up is checked, not run (it needs the network or runs the suite in itself)."""
    words = argv[1:]
    if words[:2] == ["-m", "pip"]:
        words = words[2:]
    if program_of(argv) == "pip" or argv[1:3] == ["-m", "pip"]:
        if words[:1] != ["install"] or len(words) < 2:
            raise BlockFailed(f"unexpected pip command: {shlex.join(argv)}")
        for target in words[1:]:
            if target.startswith("-"):
                continue
            if not (PIP_TARGET.match(target) or target == "nox"):
                raise BlockFailed(f"pip install target {target!r} is not this project")
            check_extras(target)


def check_extras(target: str) -> None:
    match = PIP_TARGET.match(target)
    if not match or not match.group(2):
        return
    repo = Path(__file__).resolve().parents[2]
    extras = parse_toml((repo / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in match.group(2).strip("[]").split(","):
        if extra not in extras:
            raise BlockFailed(f"{target!r}: pyproject.toml has no extra {extra!r}")


def resolve_program(argv: list[str]) -> list[str]:
    program = program_of(argv)
    if program == "accounting-bridge":
        runner = "import sys; from accounting_bridge.cli import main; sys.exit(main())"
        return [sys.executable, "-c", runner, *argv[1:]]
    if re.fullmatch(r"python3?(\.\d+)?", program):
        return [sys.executable, *argv[1:]]
    return argv


def scratch_environment(scratch: Path) -> dict[str, str]:
    """The commands' environment: the user's config and data folders are the scratch directory's, so a README
    command neither reads the reader's own profiles nor writes a journal into their home."""
    homes = {
        "HOME": scratch, "XDG_CONFIG_HOME": scratch / ".config", "XDG_DATA_HOME": scratch / ".local" / "share",
        "APPDATA": scratch / "AppData" / "Roaming", "LOCALAPPDATA": scratch / "AppData" / "Local",
    }  # fmt: skip
    return {**os.environ, **{name: str(path) for name, path in homes.items()}}


def profiles_used(argv: list[str], scratch: Path, environ: Mapping[str, str]) -> Path | None:
    """The profiles file an `accounting-bridge` command reads: its ``--profiles``, else the default one."""
    for index, word in enumerate(argv):
        if word == "--profiles" and index + 1 < len(argv):
            return scratch / argv[index + 1]
        if word.startswith("--profiles="):
            return scratch / word.split("=", 1)[1]
    from accounting_bridge.cli.paths import default_profiles

    return default_profiles(environ)


def check_profiles_stay_local(path: Path | None, command: str) -> None:
    """No README command reaches a real host: every profile it may use is `memory` or has a loopback base_url."""
    if path is None or not path.is_file():
        return
    from accounting_bridge.sync.profiles import EnvRef, read_profiles

    for name, profile in read_profiles(path).items():
        wanted = [v.variable for v in profile.settings.values() if isinstance(v, EnvRef)]
        settings = profile.resolve({**{variable: PLACEHOLDER for variable in wanted}, **os.environ})
        if profile.backend != "memory" and not is_loopback(settings.get("base_url")):
            raise BlockFailed(
                f"`{command}`: profile {name!r} ({profile.backend}) would reach a real host: give it a sandbox's "
                "base_url (a sandbox: marker exports <BACKEND>_BASE_URL)"
            )


def run_shell(source: str, console: bool, scratch: Path) -> None:
    environ = scratch_environment(scratch)
    for command, expected in shell_commands(source, console):
        argv = shlex.split(command)
        if not argv:
            continue
        if is_setup(argv):
            check_setup(argv)
            continue
        resolved = resolve_program(argv)
        if program_of(argv) == "accounting-bridge" and argv[1:2] == ["sandbox"]:
            serve_until_output(resolved, command, scratch)
            continue
        if program_of(argv) == "accounting-bridge":
            check_profiles_stay_local(profiles_used(argv, scratch, environ), command)
        done = subprocess.run(  # noqa: S603 - the README's own command
            resolved, cwd=scratch, env=environ, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
        if done.returncode != expected:
            raise BlockFailed(
                f"`{command}` exited {done.returncode}, the README expects {expected}\n"
                f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-2000:]}"
            )


def serve_until_output(argv: list[str], command: str, scratch: Path) -> None:
    """Exemption 2: a server command runs until it has printed something, then gets Ctrl-C."""
    process = subprocess.Popen(  # noqa: S603
        argv, cwd=scratch, env=scratch_environment(scratch), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(SANDBOX_COMMAND_WAIT)
    process.send_signal(signal.SIGINT)
    try:
        _out, err = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        process.kill()
    if not first or not first[0]:
        raise BlockFailed(f"`{command}` printed nothing within {SANDBOX_COMMAND_WAIT} s\nstderr:\n{err[-2000:]}")
    if process.returncode not in (0, 130, -signal.SIGINT):
        raise BlockFailed(f"`{command}` exited {process.returncode} on Ctrl-C\nstderr:\n{err[-2000:]}")


# --- main ------------------------------------------------------------------------------------------------------


def run_block(kind: str, block: Path, sandboxes: list[str], label: str) -> int:
    source = block.read_text(encoding="utf-8")
    scratch = Path.cwd()
    try:
        with sandboxes_for(sandboxes):
            if kind == "python":
                run_python(source, label)
            elif kind == "toml":
                check_toml(source, scratch)
            elif kind in ("json", "jsonl"):
                check_json(source, kind)
            else:
                run_shell(source, kind == "console", scratch)
    except BlockFailed as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["python", "toml", "console", "sh", "json", "jsonl"])
    parser.add_argument("block", type=Path)
    parser.add_argument("--sandbox", action="append", default=[])
    parser.add_argument("--label", default="<readme block>")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return run_block(args.kind, args.block, args.sandbox, args.label)


# --- serving: one process that has imported everything once, forking a fresh child per block --------------------

PRELOAD = (
    "aiohttp.web",
    "accounting_bridge",
    "accounting_bridge.sandbox",
    "accounting_bridge.adapters.memory",
    "accounting_bridge.adapters.runmyaccounts.sandbox",
    "accounting_bridge.adapters.smallinvoice.sandbox",
    "accounting_bridge.adapters.multiregnskab.sandbox",
)


def serve() -> int:
    """Read one JSON request per line (argv, cwd, out, err, timeout), run it in a forked child, answer its status.

    Forking a process that has only imported modules (no threads, no loops) gives each block a fresh process
    without paying the imports again."""
    import importlib
    import json
    import time
    import traceback

    for name in PRELOAD:
        importlib.import_module(name)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: the block's own process
            code = 70
            try:
                os.chdir(request["cwd"])
                for fd, path in ((1, request["out"]), (2, request["err"])):
                    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    os.dup2(handle, fd)
                    os.close(handle)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives until os._exit
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                code = main(request["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + float(request["timeout"])
        status: int | None = None
        while status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = -1
            else:
                time.sleep(0.01)  # polling a child process with a deadline
        print(json.dumps({"status": status}), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(serve())
    sys.exit(main(sys.argv[1:]))
