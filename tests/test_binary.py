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
