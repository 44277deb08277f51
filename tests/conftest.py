"""Shared test fixtures: the toolchain matrix, the built fixture binaries, the source signatures.

The matrix is built by `scripts/install-toolchains` and `scripts/build-fixtures`
(`scripts/test` runs both, then pytest). Where a binary is missing, tests skip,
unless DWARFGO_REQUIRE_MATRIX=1 (set by CI), where a missing binary is a failure.

The suite runs in parallel under pytest-xdist (scripts/test: `-n 2 --dist worksteal`): what a
session builds (gofmt, cmd/go, cmd/compile) is built once for all workers (`built_once`), and a
test marked `alone` runs with no other test running (a lock every other test holds shared).
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLCHAINS = Path(os.environ.get("DWARFGO_TOOLCHAINS", "/opt/dwarfgo/toolchains"))
BUILD = Path(os.environ.get("DWARFGO_BUILD", REPO / "build"))
FIXTURES = BUILD / "fixtures"
REQUIRE = os.environ.get("DWARFGO_REQUIRE_MATRIX") == "1"

# the index cache (dwarfgo/indexcache.py) of this test session: its own directory, so a run
# starts cold and never reads or fills the user's ~/.cache/dwarfgo
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="dwarfgo-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)

# One directory per test run, shared by the pytest-xdist workers (they inherit the variable from
# the controller, which makes it and removes it at exit): what is built once for all of them,
# and the `alone` lock.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER is None or "DWARFGO_TEST_SHARED" not in os.environ:
    os.environ["DWARFGO_TEST_SHARED"] = tempfile.mkdtemp(prefix="dwarfgo-test-run-")
    atexit.register(shutil.rmtree, os.environ["DWARFGO_TEST_SHARED"], ignore_errors=True)
SHARED = Path(os.environ["DWARFGO_TEST_SHARED"])

REPRESENTATIVE = ("1.15", "1.19", "1.22", "1.27")
VARIANTS_AMD64 = ("noopt", "pie", "nocompress", "trimpath", "splitdebug")


@dataclass(frozen=True)
class Built:
    go: str  # "1.22"
    arch: str
    variant: str
    fixture: str
    path: Path

    @property
    def id(self) -> str:
        return f"go{self.go}-{self.arch}-{self.variant}-{self.fixture}"

    @property
    def version(self) -> tuple[int, int]:
        major, minor = self.go.split(".")
        return int(major), int(minor)


def go_versions() -> list[str]:
    f = TOOLCHAINS / "go-versions"
    if not f.is_file():
        return []
    return [v.strip() for v in f.read_text().split() if v.strip()]


def expected_builds(fixture: str = "shapes") -> list[Built]:
    """What scripts/build-fixtures produces for one fixture."""
    out = []
    for v in go_versions():
        for arch in ("amd64", "arm64"):
            out.append(Built(v, arch, "default", fixture, FIXTURES / f"go{v}" / arch / "default" / fixture))
        if fixture == "shapes" and v in REPRESENTATIVE:
            for variant in VARIANTS_AMD64:
                out.append(Built(v, "amd64", variant, fixture, FIXTURES / f"go{v}" / "amd64" / variant / fixture))
            out.append(Built(v, "arm64", "noopt", fixture, FIXTURES / f"go{v}" / "arm64" / "noopt" / fixture))
    return out


def require_file(path: Path, what: str) -> None:
    if path.exists():
        return
    msg = f"{what} missing: {path} (run scripts/install-toolchains && scripts/build-fixtures)"
    if REQUIRE:
        pytest.fail(msg)
    pytest.skip(msg)


def newest_go() -> Path | None:
    versions = go_versions()
    if not versions:
        return None
    return TOOLCHAINS / "bin" / f"go{versions[-1]}"


_SIGS_CACHE: dict[str, dict] = {}


def source_signatures(fixture: str) -> dict:
    """Expected signatures, derived from the Go source by scripts/sourcesigs (go/types), not by dwarfgo."""
    if fixture in _SIGS_CACHE:
        return _SIGS_CACHE[fixture]
    go = newest_go()
    if go is None or not go.exists():
        require_file(TOOLCHAINS / "go-versions", "Go toolchains")
    proc = subprocess.run(
        [str(go), "run", ".", str(REPO / "fixtures" / fixture)],
        cwd=REPO / "scripts" / "sourcesigs",
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOSUMDB": "off", "GOFLAGS": "-mod=mod"},
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/sourcesigs failed: {proc.stderr[-2000:]}")
    sigs = json.loads(proc.stdout)
    _SIGS_CACHE[fixture] = sigs
    return sigs


@contextmanager
def _flock(path: Path, mode: int):
    with open(path, "a") as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def built_once(name: str, build) -> Path:
    """SHARED/name, made by build(SHARED/name) once in this test run: a worker that asks while
    another builds it waits for that build and reuses it. A failed build leaves nothing, so the
    next test that asks tries again (and fails on its own)."""
    out = SHARED / name
    done = SHARED / f".{name}.done"
    if done.exists():
        return out
    with _flock(SHARED / f".{name}.lock", fcntl.LOCK_EX):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            try:
                build(out)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)
                raise
            done.touch()
    return out


def goroot_program(go: str, command: str) -> tuple[Path, str]:
    """(the program `command` (gofmt, cmd/go, cmd/compile) built from Go `go`'s own GOROOT, that
    GOROOT): a real program, built once per test run for every test that needs it (gofmt about
    25 s, cmd/go and cmd/compile about a minute each with an empty Go build cache)."""
    wrapper = TOOLCHAINS / "bin" / f"go{go}"
    require_file(wrapper, f"Go {go} toolchain")
    goroot = subprocess.run([str(wrapper), "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip()
    name = Path(command).name

    def build(out: Path) -> None:
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": ""}
        proc = subprocess.run([str(wrapper), "build", "-o", str(out / name), command], cwd=out, env=env,
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"go{go} build {command} failed: {proc.stderr[-2000:]}")

    return built_once(f"go{go}-{name}", build) / name, goroot


def gofmt_binary(go: str) -> tuple[Path, str]:
    """(gofmt built from Go `go`'s own GOROOT, that GOROOT), shared by the tests that need one."""
    return goroot_program(go, "cmd/gofmt")


# ---- tests that must run alone -------------------------------------------------------------
# A test marked `alone` (it counts events that a loaded machine makes bpftrace lose, or depends
# on timing) takes ALONE_LOCK exclusively; every other test holds it shared while it runs. The
# gate makes a waiting `alone` test go first: while it waits, no other test starts.

ALONE_LOCK = SHARED / ".alone.lock"
ALONE_GATE = SHARED / ".alone.gate"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if XDIST_WORKER is None:  # not parallel: nothing runs beside it anyway
        yield
        return
    alone = item.get_closest_marker("alone") is not None
    with open(ALONE_GATE, "a") as gate, open(ALONE_LOCK, "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """A private index-cache home for one test (XDG_CACHE_HOME); the dwarfgo cache directory in it."""
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home / "dwarfgo"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def fresh_python(script: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """`script` run by a fresh interpreter (so that what it imports is its own), from the repository
    and with its dwarfgo first on the path, `env` added to the environment; its exit status asserted
    0 unless `check` is False."""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO), **env))
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# the live tests' figures: kept in their modules' lists (test_live.SUMMARY...); a pytest-xdist
# worker hands its lists to the controller, which prints them all
LIVE_FIGURES = {"test_live": ("SUMMARY", "RESENT"), "test_live_soak": ("SOAK",)}


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is None:
        return
    figures = {}
    for name, lists in LIVE_FIGURES.items():
        module = sys.modules.get(name)
        if module is not None:
            figures[name] = {attr: getattr(module, attr) for attr in lists}
    workeroutput["dwarfgo_live_figures"] = json.dumps(figures)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    import importlib

    figures = json.loads(getattr(node, "workeroutput", {}).get("dwarfgo_live_figures", "{}"))
    for name, lists in figures.items():
        module = importlib.import_module(name)
        for attr, values in lists.items():
            getattr(module, attr).extend(tuple(v) if isinstance(v, list) else v for v in values)


def pytest_terminal_summary(terminalreporter):
    """The live tests' figures (values compared exactly, unavailable, per run), in every report."""
    lines = []
    for name in LIVE_FIGURES:
        module = sys.modules.get(name)
        lines += module.summary_lines() if module is not None else []
    if lines:
        terminalreporter.write_sep("-", "live value checks")
        for line in lines:
            terminalreporter.write_line(line)
