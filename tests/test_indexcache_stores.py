"""What the cache keeps beside a binary's index so that a command on a function not asked
before reads little: the symbol table (SymbolStore), the large DWARF sections inflated
(SectionStore), and bpftrace's version (BpftraceVersions).

Each is checked by what the commands print (the demo's signatures, as written in
fixtures/demo/main.go) when read back, after the binary changed, and with a corrupt, truncated or
foreign file, and by whether the binary was read again (its symbol table decoded, a section
inflated) or bpftrace asked again.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from conftest import FIXTURES, REPO, require_file
from dwarfgo import binary as binary_module
from dwarfgo import indexcache
from dwarfgo.binary import GoBinary
from dwarfgo.program import GoProgram
from elftools.elf.sections import Section

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
# fixtures/demo/main.go, with the package path dwarfgo prints
PUT = "func (v *main.BarrierView) Put(ctx context.Context, entry *main.StorageEntry) error"
CHECK_KEY = "func checkKey(key string) error"


@pytest.fixture
def demo(tmp_path, monkeypatch):
    # the demo's sections are smaller than what is kept in production (1 MiB inflated): keep all
    monkeypatch.setattr(binary_module, "KEEP_INFLATED", 0)
    path = tmp_path / "demo"
    shutil.copy2(DEMO, path)
    return path


class _Reads:
    """Counts what a run read from the binary itself: symbol tables decoded, sections inflated."""

    def __init__(self, monkeypatch):
        self.symbol_tables = 0
        self.inflated: list[str] = []
        read_table, data = GoBinary._read_symbol_table, Section.data

        def counted_table(binary):
            self.symbol_tables += 1
            return read_table(binary)

        def counted_data(section):
            if section.compressed:
                self.inflated.append(section.name)
            return data(section)

        monkeypatch.setattr(GoBinary, "_read_symbol_table", counted_table)
        monkeypatch.setattr(Section, "data", counted_data)

    def reset(self) -> None:
        self.symbol_tables, self.inflated = 0, []

    @property
    def kept_sections_inflated(self) -> list[str]:
        """The sections inflated that the store keeps (the others are inflated on each use)."""
        return [n for n in self.inflated if n.replace(".zdebug", ".debug", 1) in binary_module.KEPT_SECTIONS]


def _signatures(path) -> list[str]:
    with GoProgram(path) as prog:
        return [prog.function(q).signature() for q in ("(*BarrierView).Put", "main.checkKey")]


def _one(cache_home, suffix: str):
    [found] = [f for f in cache_home.glob("*" + suffix) if not f.name.startswith(".")]
    return found


def test_symbols_and_sections_are_read_back_and_not_from_the_binary(demo, cache_home, monkeypatch):
    reads = _Reads(monkeypatch)
    assert _signatures(demo) == [PUT, CHECK_KEY]
    assert reads.symbol_tables == 1 and ".debug_info" in reads.inflated
    _one(cache_home, indexcache.SYMBOLS_SUFFIX)
    kept = {f.name.split(".")[1] for f in cache_home.glob("*" + indexcache.SECTION_SUFFIX)}
    assert "debug_info" in kept and kept == {name.lstrip(".") for name in reads.kept_sections_inflated}
    reads.reset()
    assert _signatures(demo) == [PUT, CHECK_KEY]
    assert reads.symbol_tables == 0 and reads.kept_sections_inflated == []
    # and the table read back is the one the binary holds: every function symbol, every address by name
    with GoBinary(demo) as plain, GoProgram(demo) as prog:
        assert prog.binary.function_symbols == plain.function_symbols
        assert prog.binary.data_symbol("runtime.types") == plain.data_symbol("runtime.types") is not None
        assert prog.binary._address_of_name == plain._read_symbol_table()[1]
    indexcache.clear()
    assert not list(cache_home.glob("*" + indexcache.SYMBOLS_SUFFIX))
    assert not list(cache_home.glob("*" + indexcache.SECTION_SUFFIX))


def test_no_cache_keeps_nothing(demo, cache_home):
    with GoProgram(demo, cache=False) as prog:
        assert prog.function("main.checkKey").signature() == CHECK_KEY
    assert not cache_home.exists()


def test_a_changed_binary_reads_them_again(demo, cache_home, monkeypatch):
    _signatures(demo)
    reads = _Reads(monkeypatch)
    os.utime(demo, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: same build ID, another mtime
    assert _signatures(demo) == [PUT, CHECK_KEY]
    assert reads.symbol_tables == 1 and ".debug_info" in reads.inflated
    reads.reset()
    assert _signatures(demo) == [PUT, CHECK_KEY]  # the files rewritten for the binary as it is now
    assert reads.symbol_tables == 0 and reads.kept_sections_inflated == []


def _flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _header_only(path) -> None:
    path.write_bytes(path.read_bytes().partition(b"\n")[0] + b"\n")


def _garbage(path) -> None:
    path.write_bytes(b"\xff\xfe\x00garbage\n{not json")


@pytest.mark.parametrize("damage", [_flip_last_byte, _truncate, _header_only, _garbage])
@pytest.mark.parametrize("suffix", [indexcache.SYMBOLS_SUFFIX, "debug_info" + indexcache.SECTION_SUFFIX])
def test_a_corrupt_file_is_a_miss_and_rewritten(demo, cache_home, monkeypatch, suffix, damage):
    _signatures(demo)
    damage(_one(cache_home, suffix))
    reads = _Reads(monkeypatch)
    assert _signatures(demo) == [PUT, CHECK_KEY]
    if suffix == indexcache.SYMBOLS_SUFFIX:
        assert reads.symbol_tables == 1
    else:
        assert reads.inflated.count(".debug_info") == 1
    reads.reset()
    assert _signatures(demo) == [PUT, CHECK_KEY]
    assert reads.symbol_tables == 0 and reads.kept_sections_inflated == []


def test_another_binarys_files_are_a_miss(demo, cache_home, monkeypatch):
    """The demo's files put where another binary's belong: each says whose it is, and is not taken."""
    other = FIXTURES / "go1.27" / "amd64" / "default" / "shapes"
    require_file(other, "fixture binary")
    _signatures(demo)
    with GoProgram(other) as prog:
        theirs = prog.cache
    shutil.copy(_one(cache_home, indexcache.SYMBOLS_SUFFIX), indexcache.SymbolStore(theirs).path)
    shutil.copy(_one(cache_home, "debug_info" + indexcache.SECTION_SUFFIX),
                indexcache.SectionStore(theirs).path(".debug_info"))
    reads = _Reads(monkeypatch)
    with GoProgram(other) as prog, GoBinary(other) as plain:
        fn = prog.function("main.Pointers")  # fixtures/shapes/funcs.go: Pointers(p *Pair, pp **Pair, n *int, s *string)
        assert fn.name == "main.Pointers" and [p.name for p in fn.inputs] == ["p", "pp", "n", "s"]
        assert prog.binary.function_symbols == plain.function_symbols
    assert reads.symbol_tables == 2 and ".debug_info" in reads.inflated  # (2: with the plain binary's)


def test_bpftrace_version_is_asked_once_per_bpftrace(cache_home, tmp_path):
    from dwarfgo.emit.dialect import detect

    calls = tmp_path / "calls"
    fake = tmp_path / "bpftrace"
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\necho 'bpftrace v0.21.2'\n")
    fake.chmod(0o755)

    def runs() -> int:
        return len(calls.read_text().split()) if calls.exists() else 0

    assert detect(str(fake), cached=True)[0].version == (0, 21, 2)
    assert detect(str(fake), cached=True)[0].version == (0, 21, 2)
    assert runs() == 1
    assert detect(str(fake))[0].version == (0, 21, 2)  # without the cache (--no-cache): asked again
    assert runs() == 2
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\necho 'bpftrace v0.23.0 (and more)'\n")  # another binary
    assert detect(str(fake), cached=True)[0].version == (0, 23, 0)
    assert runs() == 3
    for kept in cache_home.glob("*" + indexcache.BPFTRACE_SUFFIX):  # (one per bpftrace binary seen)
        kept.write_text(json.dumps({"identity": "another", "version": "bpftrace v9.9"}))  # foreign: asked again
    assert detect(str(fake), cached=True)[0].version == (0, 23, 0)
    assert runs() == 4
    indexcache.clear()
    assert not list(cache_home.glob("*" + indexcache.BPFTRACE_SUFFIX))


def _fresh_decoders(monkeypatch, capstone_imports: list | None = None) -> None:
    """verify.machine as in a new process: no facts learnt, Capstone not imported (its imports
    counted in `capstone_imports`)."""
    from dwarfgo.verify import machine

    for table in ("_ICED_AGREES", "_ICED_RET_NAMED", "_ICED_MNEMONICS", "_FACTS"):
        monkeypatch.setattr(machine, table, {})
    monkeypatch.setattr(machine, "_FACTS_STATE", {"store": None, "sizes": None})
    for name in ("capstone", "x86_const", "arm64_const", "iced_x86"):
        monkeypatch.setattr(machine, name, None)
    if capstone_imports is not None:
        real = machine._import_capstone

        def counted():
            if machine.capstone is None:
                capstone_imports.append(True)
            real()

        monkeypatch.setattr(machine, "_import_capstone", counted)


def _reports(path, cache: bool) -> list:
    from dwarfgo.verify.machine import analyze

    with GoProgram(path, cache=cache) as prog:
        fns = [s for s in prog.binary.function_symbols if s.name.startswith("main.") and s.size][:20]
        return [analyze(prog.binary, s.address, s.size) for s in fns]


def test_decoder_facts_stand_for_capstone(demo, cache_home, monkeypatch):
    """What Capstone says of iced-x86's instructions, kept: a later process analyses the same
    machine code to the same reports (prologue, stack check, frame, spills, RETs) without
    importing Capstone; a corrupt facts file is a miss."""
    _fresh_decoders(monkeypatch)
    reference = _reports(demo, cache=False)  # every fact asked of Capstone
    assert not list(cache_home.glob("*" + indexcache.DECODERS_SUFFIX))
    _fresh_decoders(monkeypatch)
    assert _reports(demo, cache=True) == reference  # learns the facts (and a sample's), keeps them
    [facts] = cache_home.glob("*" + indexcache.DECODERS_SUFFIX)
    imports: list = []
    _fresh_decoders(monkeypatch, imports)
    assert _reports(demo, cache=True) == reference
    assert imports == []
    facts.write_bytes(facts.read_bytes()[:-3])  # truncated: asked of Capstone again
    again: list = []
    _fresh_decoders(monkeypatch, again)
    assert _reports(demo, cache=True) == reference
    assert again


_SAMPLED_IN: list[int] = []  # the processes that sampled the binary's code (a worker inherits the parent's list)


def _sampled_in(prog, fn):
    from dwarfgo.verify.machine import analyze
    analyze(prog.binary, fn.address, fn.symbol.size)
    return os.getpid(), list(_SAMPLED_IN)


def test_a_whole_binary_run_samples_the_decoders_once_before_its_workers(demo, cache_home, monkeypatch):
    """A run over many functions in worker processes learns what Capstone says of the binary's
    instructions once, in the parent before the workers are forked (they inherit it, none
    samples the code again), and keeps it: the facts file is written when the program closes."""
    from dwarfgo import parallel
    from dwarfgo.verify import machine
    from dwarfgo.verify.evidence import prepare_gather
    _fresh_decoders(monkeypatch)
    monkeypatch.setattr(parallel, "MIN_PARALLEL", 0)
    monkeypatch.setattr(parallel, "RUN_LENGTH", 4)
    real = machine._learn_from_sample

    def counted(binary):
        _SAMPLED_IN.append(os.getpid())
        real(binary)

    monkeypatch.setattr(machine, "_learn_from_sample", counted)
    _SAMPLED_IN.clear()
    with GoProgram(demo, cache=True) as prog:
        got = list(prog.map_matching("strconv.", _sampled_in, workers=2, prepare=prepare_gather))
    assert len(got) > 30 and os.getpid() not in {pid for pid, _ in got}
    assert all(sampled == [os.getpid()] for _, sampled in got)
    assert len(list(cache_home.glob("*" + indexcache.DECODERS_SUFFIX))) == 1


def _kept(cache_home, names, addresses, sizes, others) -> indexcache.KeptSymbols:
    index = indexcache.IndexCache.keyed("a build id", os.stat(DEMO))
    store = indexcache.SymbolStore(index)
    store.put(names, addresses, sizes, others)
    return store.get()


def test_kept_symbols_looked_up_in_place_as_in_the_lists(cache_home):
    """A lookup in the kept table (no lists made) answers as the lists and dict it keeps: names
    that repeat (side by side too), an empty name, a name that is another's prefix or suffix,
    non-ASCII names and a lone surrogate; names with no address among the others."""
    names = ["main.a", "main.a", "", "x", "main.ab", "b.main.a", "é.f", "main.a", "s\udcff", "last"]
    addresses = [0x1000 + 16 * i for i in range(len(names))]
    sizes = [i * 3 for i in range(len(names))]
    others = {"runtime.text": 0x1000, "go:buildid": 0x500, "main.a": 0x2000, "x": None, "é": 7}
    kept = _kept(cache_home, names, addresses, sizes, others)
    assert (kept.names, kept.addresses, kept.sizes, kept.others) == (names, addresses, sizes, others)
    assert list(kept.address_column) == addresses
    for i in range(len(names)):
        assert (kept.name(i), kept.address(i), kept.size(i)) == (names[i], addresses[i], sizes[i])
    for name in [*names, "main.", "a", "main.a\0", "ab", "nope", "\0", "main.a\0main.a"]:
        where = [i for i, n in enumerate(names) if n == name]
        assert kept.positions(name, 2) == where[:2] and kept.positions(name, 1) == where[:1], name
    for name in [*others, *names, "runtime.tex", "text", "nope"]:
        assert kept.other_address(name) == ((True, others[name]) if name in others else (False, None)), name
    with pytest.raises(IndexError):
        kept.name(len(names))
    empty = _kept(cache_home, [], [], [], {})
    assert (empty.names, empty.positions("", 2), empty.other_address("")) == ([], [], (False, None))
    one_empty = _kept(cache_home, [""], [1], [2], {"": None})
    assert one_empty.names == [""] and one_empty.positions("", 2) == [0] and one_empty.other_address("") == (True, None)


def test_symbols_looked_up_in_the_kept_table_as_in_the_binary(demo, cache_home):
    """Warm (the table kept), a function found by its name, the symbol at an address and a data
    symbol's address are the ones the binary's own symbol table gives, without making the lists."""
    _signatures(demo)
    with GoBinary(demo) as plain:
        symbols = plain.function_symbols
        by_name = plain._read_symbol_table()[1]
        names = [s.name for s in symbols]
        queries = [symbols[0].name, symbols[len(symbols) // 2].name, symbols[-1].name, "main.checkKey",
                   "runtime.memmove", "nope", "runtime.types", "runtime.text", "go:buildid"]
        for query in queries:
            with GoProgram(demo) as prog:
                b = prog.binary
                want = symbols[names.index(query)] if names.count(query) == 1 else None
                assert b.symbol_named(query) == want, query
                assert b.data_symbol(query) == plain.data_symbol(query) == by_name.get(query), query
                for address in (symbols[1].address, symbols[1].address + 1, symbols[-1].address, 0, 1 << 40):
                    assert b.symbol_at(address) == plain.symbol_at(address), hex(address)
                assert "_symbol_columns" not in b.__dict__ and "function_symbols" not in b.__dict__
