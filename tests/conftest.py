"""Shared test fixtures: the toolchain matrix, the built fixture binaries, the source signatures.

The matrix is built by `scripts/install-toolchains` and `scripts/build-fixtures`
(`scripts/test` runs both, then pytest). Where a binary is missing, tests skip,
unless DWARFGO_REQUIRE_MATRIX=1 (set by CI), where a missing binary is a failure.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
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


_GOFMT: dict[str, Path] = {}


def gofmt_binary(go: str) -> tuple[Path, str]:
    """(gofmt built from Go `go`'s own GOROOT, that GOROOT): a real program, built once per session
    (about 25 s) and shared by the tests that need one."""
    wrapper = TOOLCHAINS / "bin" / f"go{go}"
    require_file(wrapper, f"Go {go} toolchain")
    goroot = subprocess.run([str(wrapper), "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip()
    if go not in _GOFMT:
        out = Path(tempfile.mkdtemp(prefix=f"dwarfgo-gofmt{go}-"))
        atexit.register(shutil.rmtree, out, ignore_errors=True)
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": ""}
        subprocess.run([str(wrapper), "build", "-o", str(out / "gofmt"), "cmd/gofmt"], cwd=out, env=env,
                       check=True, capture_output=True, timeout=600)
        _GOFMT[go] = out / "gofmt"
    return _GOFMT[go], goroot


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """A private index-cache home for one test (XDG_CACHE_HOME); the dwarfgo cache directory in it."""
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home / "dwarfgo"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def pytest_terminal_summary(terminalreporter):
    """The live tests' figures (values compared exactly, unavailable, per run), in every report."""
    import sys

    lines = []
    for name in ("test_live", "test_live_soak"):
        module = sys.modules.get(name)
        lines += module.summary_lines() if module is not None else []
    if lines:
        terminalreporter.write_sep("-", "live value checks")
        for line in lines:
            terminalreporter.write_line(line)
