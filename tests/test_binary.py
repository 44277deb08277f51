"""ELF-level facts of the committed demo binary (no toolchains needed)."""

from conftest import REPO
from dwarfgo.binary import GoBinary, parse_go_version

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"


def test_identity_of_demo():
    with GoBinary(DEMO) as b:
        assert b.arch == "amd64" and b.ptr_size == 8
        assert b.go_version == "go1.22.10"  # from .go.buildinfo
        assert b.build_id and b.build_id.count("/") == 3
        assert b.symbols_by_name["main.(*BarrierView).Put"].size > 0


def test_go_version_falls_back_to_the_dwarf_producer():
    with GoBinary(DEMO) as b:
        b._buildinfo_version = lambda: None  # as for a binary without .go.buildinfo
        assert b.go_version == "go1.22.10"


def test_parse_go_version():
    assert parse_go_version("go1.22.10") == (1, 22, 10)
    assert parse_go_version("go1.21rc2") == (1, 21, 0)
    assert parse_go_version(None) is None


def test_every_function_symbol_is_listed_under_its_name():
    """runtime.text, a zero-size marker at the first function's address, once hid that function
    (internal/abi.(*RegArgs).Dump in Go 1.27's cmd/go) and took its signature. Every sized FUNC
    symbol that readelf lists (the .abi0 twin of a function aside) is a function under its name."""
    import subprocess

    from conftest import FIXTURES, go_versions, require_file

    for go in {(go_versions() or ["1.27"])[0], (go_versions() or ["1.27"])[-1]}:
        path = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
        require_file(path, "fixture binary")
        listed = subprocess.run(["readelf", "-sW", str(path)], capture_output=True, text=True, check=True).stdout
        sized, markers = {}, {}
        for line in listed.splitlines():
            cols = line.split(None, 7)
            if len(cols) == 8 and cols[3] == "FUNC" and int(cols[1], 16):
                (sized if int(cols[2]) else markers).setdefault(int(cols[1], 16), set()).add(cols[7])
        names = {s.address: s.name for s in GoBinary(path).function_symbols}
        missing = [(hex(a), n) for a, n in sized.items() if names.get(a) not in n and
                   not all(x.endswith(".abi0") for x in n)]
        assert not missing, (go, missing[:10])
        hidden = [(hex(a), names.get(a)) for a in markers if a in sized and names.get(a) in markers[a]]
        assert markers and not hidden, (go, hidden)
