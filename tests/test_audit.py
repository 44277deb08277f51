"""The whole-binary signature audit (scripts/audit-signatures) on real programs built from a Go
toolchain's own GOROOT (issue 10), and on every fixture. Every function whose signature the
source gives (go/types, scripts/sourcesigs -program) must match `dwarfgo sig`; what cannot be
derived is counted apart with its reason, and must stay a minority.

A program is built once per test run (conftest.goroot_program). CPU with an empty Go build
cache (build, then audit; the audit without compiling scripts/sourcesigs, which the other
audits compile anyway): Go 1.15 cmd/go 11 s + ~10 s, cmd/compile 2 s + ~15 s (Debian's Go
ships cmd's packages compiled); 1.19 cmd/go 26 s + ~11 s, cmd/compile 3 s + ~19 s; 1.22 cmd/go
50 s after gofmt's build (24 s) + ~12 s, cmd/compile 138 s after cmd/go's + ~16 s; 1.27 cmd/go
112 s + 19 s, cmd/compile 188 s + ~50 s. The 1.22 pair adds about 3.7 CPU minutes (under 2
minutes of the two workers), for the issue's twelve programs: gofmt, cmd/go and cmd/compile of
the four representative versions."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re

import pytest

from conftest import REPO, TOOLCHAINS, gofmt_binary, goroot_program, require_file


def _audit_module():
    loader = importlib.machinery.SourceFileLoader("audit_signatures", str(REPO / "scripts" / "audit-signatures"))
    spec = importlib.util.spec_from_loader("audit_signatures", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _versions() -> list[str]:
    return ["1.15", "1.19", "1.22", "1.27"]  # the representative versions of the matrix


def _audit_equal(binary, src: str, wrapper) -> None:
    r = _audit_module().audit(str(binary), src, str(wrapper), show=5)
    assert r["different"] == 0, (r["different_by_category"], r["examples"])
    assert r["audited"] == r["equal"]
    assert r["audited"] > 2000, r
    assert r["not_derivable"] < r["audited"] / 3, r["not_derivable_by_reason"]


@pytest.mark.matrix
@pytest.mark.parametrize("go", _versions())
def test_gofmt_signatures_match_source(go):
    binary, goroot = gofmt_binary(go)
    _audit_equal(binary, f"{goroot}/src/cmd/gofmt", TOOLCHAINS / "bin" / f"go{go}")


# cmd/go and cmd/compile of the four representative versions (costs above)
GOROOT_PROGRAMS = [(go, program) for go in _versions() for program in ("cmd/go", "cmd/compile")]


@pytest.mark.matrix
@pytest.mark.parametrize("go, program", GOROOT_PROGRAMS, ids=[f"go{g}-{p.removeprefix('cmd/')}" for g, p in GOROOT_PROGRAMS])
def test_cmd_go_and_compile_signatures_match_source(go, program):
    binary, goroot = goroot_program(go, program)
    _audit_equal(binary, f"{goroot}/src/{program}", TOOLCHAINS / "bin" / f"go{go}")


FIXTURE_NAMES = ("shapes", "demo", "stackgrowth", "concurrent", "coldmem")


@pytest.mark.matrix
@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
@pytest.mark.parametrize("go", ["1.15", "1.19", "1.21", "1.22", "1.27"])  # 1.21: its wrappers lack DWARF results
def test_fixture_whole_binary_audit(go, fixture):
    """Every function of a fixture binary (its own and the standard library's), not only the
    probed ones: zero differences with the source."""
    from conftest import FIXTURES

    binary = FIXTURES / f"go{go}" / "amd64" / "default" / fixture
    require_file(binary, "fixture binary")
    wrapper = TOOLCHAINS / "bin" / f"go{go}"
    r = _audit_module().audit(str(binary), str(REPO / "fixtures" / fixture), str(wrapper), show=5)
    assert r["different"] == 0, r["examples"]
    assert r["audited"] > 1000, r



_LOCAL_TYPE_METHOD = r"^main\.(?:\(\*)?(?!init\.)[A-Za-z_]\w*\.\d+\)?\.(?!func\d)\w+$"  # main.upper.2.Write, main.(*upper.2).Write
_COMPILER_NAMED = r"^main\.(?:init\.\d+(?:\.func\d+)?|init\.func\d+|glob\.\.func\d+|main\.(?:gowrap|deferwrap|func)\d+|.*-fm)$"


@pytest.fixture(scope="module", params=["1.15", "1.19", "1.27"])
def localtypes_audit(request, tmp_path_factory):
    """tests/data/localtypes built by a Go whose compiler numbers local types its own way
    (<= 1.17: aliases count, blank types do not; 1.18+: the other way round), with its symbols
    (the toolchain's `go tool nm`, not dwarfgo), its source signatures, and its audit."""
    import os
    import subprocess

    go = request.param
    wrapper = TOOLCHAINS / "bin" / f"go{go}"
    require_file(wrapper, f"Go {go} toolchain")
    src = REPO / "tests" / "data" / "localtypes"
    binary = tmp_path_factory.mktemp(f"localtypes{go}") / "localtypes"
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "", "GOTOOLCHAIN": "local", "GOPROXY": "off"}
    proc = subprocess.run([str(wrapper), "build", "-o", str(binary), "."], cwd=src,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    nm = subprocess.run([str(wrapper), "tool", "nm", str(binary)], capture_output=True, text=True, check=True)
    symbols = {line.split()[-1] for line in nm.stdout.splitlines() if line.split()}
    audit = _audit_module()
    sigs = audit.source_signatures(src, wrapper)
    r = audit.audit(str(binary), str(src), str(wrapper), show=10000, sigs=sigs)
    return go, symbols, sigs, r, binary


@pytest.mark.matrix
def test_local_types_are_numbered_as_the_compiler_does(localtypes_audit):
    """sourcesigs names a type declared inside a function as the binary's compiler does: every
    local type's method symbol in the binary is one sourcesigs derives from the source, and the
    audit compares them all, with no difference."""
    import re

    go, symbols, sigs, r, _ = localtypes_audit
    local = {s for s in symbols if re.match(_LOCAL_TYPE_METHOD, s)}
    # 2 upper types and 1 counted, each with a value and a pointer Write wrapper
    assert len(local) == 6, sorted(local)
    assert local <= set(sigs), sorted(local - set(sigs))
    want_numbers = {"1.15": ["counted.4", "upper.2", "upper.3"]}.get(go, ["counted.4", "upper.1", "upper.3"])
    assert sorted({re.sub(r"^main\.\(?\*?|\)?\.Write$", "", s) for s in local}) == want_numbers
    assert r["different"] == 0, r["examples"]
    not_derivable = {n for names in r["not_derivable_examples"].values() for n in names}
    assert not local & not_derivable, sorted(local & not_derivable)


@pytest.mark.matrix
def test_compiler_named_functions_are_audited(localtypes_audit):
    """init functions and their literals, method value wrappers (`-fm`), Go 1.20+'s package-level
    literals (`init.funcN`; `glob..funcN` before), and the go/defer wrappers (type func(): Go
    1.22+'s `gowrapN`, `deferwrapN`; 1.17-1.21's closures numbered after the literals) are derived
    from the source and compared, not filed as not derivable."""
    import re

    go, symbols, sigs, r, _ = localtypes_audit
    named = {s for s in symbols if re.match(_COMPILER_NAMED, s)}
    want = {"main.init.0", "main.init.0.func1", "main.(*greeter).greet-fm"}
    want |= {f"main.{'init.' if go >= '1.20' else 'glob..'}func{n}" for n in (1, 2, 3)}
    if go >= "1.22":
        want |= {"main.main.gowrap1", "main.main.deferwrap2"}
    elif go >= "1.17":  # named as closures of main, which has no literal
        want |= {"main.main.func1", "main.main.func2"}
    assert want <= named, sorted(want - named)
    not_derivable = {n for names in r["not_derivable_examples"].values() for n in names}
    assert not named & not_derivable, sorted(named & not_derivable)
    assert r["different"] == 0, r["examples"]


@pytest.mark.matrix
def test_package_literals_are_numbered_as_the_compiler_does(localtypes_audit):
    """The package-level literals (glob..funcN before Go 1.20, init.funcN after) that sourcesigs
    derives are the binary's: the toolchain's addr2line puts each symbol's entry on the line of
    the literal sourcesigs gives it (the compilers number them in three different orders)."""
    import subprocess

    go, symbols, sigs, r, binary = localtypes_audit
    wrapper = str(TOOLCHAINS / "bin" / f"go{go}")
    nm = subprocess.run([wrapper, "tool", "nm", str(binary)], capture_output=True, text=True, check=True)
    entries = {p[2]: p[0] for p in (line.split() for line in nm.stdout.splitlines())
               if len(p) == 3 and re.fullmatch(r"main\.(?:glob\.\.|init\.)func\d+", p[2])}
    assert len(entries) == 3, entries
    names = sorted(entries)
    lines = subprocess.run([wrapper, "tool", "addr2line", str(binary)], input="".join(f"0x{entries[n]}\n" for n in names),
                           capture_output=True, text=True, check=True).stdout.splitlines()
    got = {n: int(lines[2 * i + 1].rsplit(":", 1)[1]) for i, n in enumerate(names)}
    assert got == {n: sigs[n]["line"] for n in names}


@pytest.mark.matrix
def test_wrappers_are_described(localtypes_audit):
    """The compiler's wrappers of tests/data/localtypes, from its source: `go report(...)` and
    `defer fmt.Println(...)` in main (no literal), and the interface's method value `w.Write`.
    A go/defer wrapper's DIE (DW_AT_trampoline, Go 1.19+) is found and `sig` says what it is;
    Go 1.19's io.Writer.Write-fm has no parameters in DWARF (Write's `p` cannot be taken from
    anywhere) and dwarfgo says so instead of printing `func()` as complete."""
    from typer.testing import CliRunner

    from dwarfgo.cli import app
    from dwarfgo.program import GoProgram

    go, _, _, _, binary = localtypes_audit
    wrappers = {"1.15": [], "1.19": ["main.main.func1", "main.main.func2"]}.get(go, ["main.main.gowrap1", "main.main.deferwrap2"])
    with GoProgram(str(binary)) as prog:
        for name in wrappers:
            fn = prog.function(name)
            assert fn.has_dwarf and not fn.inputs and not fn.results, name
            assert "go or defer statement" in (fn.wrapper_kind or ""), (name, fn.wrapper_kind)
        assert prog.function("main.report").wrapper_kind is None
        write = prog.function("io.Writer.Write-fm")
        if go == "1.19":
            assert not write.arguments and write.inputs_note
            assert "/* parameters not in DWARF */" in write.signature()
        else:
            assert [p.name for p in write.arguments] == ["p"] and write.inputs_note is None
    if wrappers:
        out = CliRunner().invoke(app, ["sig", str(binary), wrappers[0]])
        assert out.exit_code == 0, out.output
        assert "wrapper compiler-generated (DW_AT_trampoline): the wrapper of a go or defer statement" in out.output
    out = CliRunner().invoke(app, ["sig", str(binary), "io.Writer.Write-fm"])
    assert out.exit_code == 0, out.output
    assert ("note    parameters unknown: Go 1.19 writes no DWARF parameters" in out.output) == (go == "1.19"), out.output
