"""The per-binary index, kept on disk between runs, keyed by the binary's build ID.

What a command looks up in the DWARF before it reads the few DIEs it needs: the compile units
(name, producer, address ranges, offset), each scanned unit's subprograms (entry address -> DIE
offset), and the type DIE offsets by name. The index fills as it is used: a unit is scanned the
first time a command needs it, and the file is rewritten with what was added.

A file is trusted only for the binary it was made from: the same Go build ID (or GNU build ID),
file size and mtime (and the same of a separate debug file), and this format version. Anything
else in the file (another binary's index, a stale, truncated or corrupt file) is ignored and
rebuilt. Writes go to a temporary file renamed over the old one, so a reader never sees half a
file and concurrent writers each leave a whole one. An unwritable cache directory means no
cache, said once on stderr.
"""

from __future__ import annotations

import array
import hashlib
import json
import mmap
import os
import stat
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
SUFFIX = ".index.json"
RESULTS_SUFFIX = ".results.json"  # a ResultStore's file, beside its binary's index

_warned: set[str] = set()


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/dwarfgo, or ~/.cache/dwarfgo."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dwarfgo"


def _notice(message: str) -> None:
    """Say a cache problem once per process (the commands still work without a cache)."""
    if message not in _warned:
        _warned.add(message)
        print(f"dwarfgo: {message}", file=sys.stderr)


@dataclass(frozen=True)
class UnitRecord:
    """A compile unit as the index keeps it."""

    offset: int
    name: str
    producer: str
    ranges: list[tuple[int, int]]


class IndexCache:
    """The cached index of one binary: read when first asked for (a command answered from its
    stored results never reads it), written back by save() when it grew."""

    def __init__(self, path: Path, identity: dict):
        self.path = path
        self.identity = identity
        self._units: list[UnitRecord] | None = None
        self._subprograms: dict[int, dict[int, int]] = {}  # unit offset -> {entry address: DIE offset}
        self._types: dict[str, int] | None = None
        # type DIE offsets of single names, found without making the whole table (`types`): the
        # first DIE of the name, as the table would have it
        self._types_found: dict[str, int] = {}
        self._loaded = False  # a valid file of this binary was read
        self._read = False
        self._dirty = False
        self._discarded = False
        self._seen: tuple[int, int, int] | None = None  # the file as _load found it (_file_version)

    def _ensure(self) -> None:
        if not self._read:
            self._read = True
            self._load()

    @property
    def units(self) -> list[UnitRecord] | None:
        self._ensure()
        return self._units

    @property
    def subprograms(self) -> dict[int, dict[int, int]]:
        self._ensure()
        return self._subprograms

    @property
    def types(self) -> dict[str, int] | None:
        self._ensure()
        return self._types

    @property
    def types_found(self) -> dict[str, int]:
        self._ensure()
        return self._types_found

    @property
    def loaded(self) -> bool:
        """A valid file of this binary was read."""
        self._ensure()
        return self._loaded

    @classmethod
    def for_binary(cls, binary) -> "IndexCache | None":
        """The cache of a GoBinary, or None when it has no build ID to key it by."""
        build_id = binary.build_id or binary.gnu_build_id
        if not build_id:
            return None
        try:
            st = os.stat(binary.path)
            debug_path = binary.debug_path
            debug = None
            if debug_path is not None:
                dst = os.stat(debug_path)
                debug = [dst.st_size, dst.st_mtime_ns]
        except OSError:
            return None
        return cls.keyed(build_id, st, debug)

    @classmethod
    def keyed(cls, build_id: str, st: os.stat_result, debug: list[int] | None = None) -> "IndexCache":
        """The cache of the binary with this build ID and stat (and separate debug file's size and
        mtime): its file and the identity a valid one holds."""
        identity = {"format": FORMAT_VERSION, "build_id": build_id, "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns, "debug": debug}
        return cls(_index_path(build_id, st.st_size), identity)

    # ------------------------------------------------------------ reading
    def _load(self) -> None:
        self._seen = _file_version(self.path)
        try:
            with open(self.path, "rb") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return
        except (OSError, ValueError):  # unreadable, or not JSON (truncated, overwritten)
            return
        try:
            self._take(doc)
        except (TypeError, ValueError, KeyError, AttributeError):
            self._units, self._subprograms, self._types = None, {}, None  # a corrupt file: rebuilt
            self._types_found = {}

    def _take(self, doc) -> None:
        if not isinstance(doc, dict) or doc.get("identity") != self.identity:
            return  # another binary's, a stale or a foreign file
        units = doc["units"]
        if units is not None:
            self._units = [UnitRecord(_int(u[0]), _str(u[1]), _str(u[2]), [(_int(lo), _int(hi)) for lo, hi in u[3]])
                           for u in units]
        # the tables are checked a whole table at a time (set(map(type, ...)) runs in C): the index of
        # a binary with every unit scanned holds some 30,000 subprograms and 10,000 types
        self._subprograms = {_int(int(k)): _int_table(dict(v)) for k, v in doc["subprograms"].items()}
        types = doc["types"]
        if types is not None and not (isinstance(types, dict) and set(map(type, types)) <= {str}
                                      and set(map(type, types.values())) <= {int}):
            raise TypeError("a type table of other than names and offsets")
        found = doc.get("types_found", {})  # (not in files written before it was kept)
        if not (isinstance(found, dict) and set(map(type, found)) <= {str} and set(map(type, found.values())) <= {int}):
            raise TypeError("found types of other than names and offsets")
        self._types = types
        self._types_found = found
        self._loaded = True

    # ------------------------------------------------------------ filling
    def store_units(self, units: list[UnitRecord]) -> None:
        self._ensure()
        self._units = units
        self._dirty = True

    def store_subprograms(self, unit_offset: int, table: dict[int, int]) -> None:
        self._ensure()
        self._subprograms[unit_offset] = table
        self._dirty = True

    def store_types(self, types: dict[str, int]) -> None:
        self._ensure()
        self._types = types
        self._dirty = True

    def store_type_found(self, name: str, offset: int) -> None:
        self._ensure()
        self._types_found[name] = offset
        self._dirty = True

    def discard(self) -> None:
        """Forget everything: a looked-up DIE did not match what the index said it is."""
        self._read = True
        self._units, self._subprograms, self._types = None, {}, None
        self._types_found = {}
        self._loaded = False
        self._dirty = True
        self._discarded = True

    # ------------------------------------------------------------ writing
    def save(self) -> None:
        """Write the index if it grew, merged with what another process may have written since
        (atomic: a temporary file renamed over the old one)."""
        if not self._dirty:
            return
        self._dirty = False
        if not self._discarded and _file_version(self.path) != self._seen:
            other = IndexCache(self.path, self.identity)  # another process's additions, if any
            for offset, table in other.subprograms.items():
                self._subprograms.setdefault(offset, table)
            if self._types is None:
                self._types = other.types
            for name, offset in other.types_found.items():
                self._types_found.setdefault(name, offset)
            if self._units is None:
                self._units = other.units
        doc = {"identity": self.identity,
               "units": None if self._units is None else [[u.offset, u.name, u.producer, u.ranges] for u in self._units],
               "subprograms": {str(k): sorted(v.items()) for k, v in self._subprograms.items()},
               "types": self._types, "types_found": self._types_found}
        _write_atomically(self.path, doc)


def _file_version(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of the file at `path`, None when there is none: a writer renames a
    new file over it (another inode), so the same triple later means nothing was written since."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _index_path(build_id: str, size: int) -> Path:
    return cache_dir() / (hashlib.sha256(f"{build_id}\0{size}".encode("utf-8", "replace")).hexdigest()[:32] + SUFFIX)


STACK_SUFFIX = ".stack.json"  # a StackVerdicts file
BPFTRACE_SUFFIX = ".bpftrace.json"  # a BpftraceVersions file


class StackVerdicts:
    """What bpftrace said when it compiled a program (emit/stackcheck.py: "fits", "over the
    stack", "too large"), kept by the bpftrace binary (path, size, mtime), its flags and
    environment, and the program's text: the same program is not compiled again to learn the
    same answer."""

    def __init__(self, bpftrace: str, flags: list[str], env: dict[str, str], text: str):
        h = hashlib.sha256()
        try:
            st = os.stat(bpftrace)
            h.update(f"{os.path.realpath(bpftrace)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        except OSError:
            h.update(f"{bpftrace}\0?\0".encode())
        h.update(json.dumps([flags, sorted(env.items())]).encode())
        h.update(text.encode("utf-8", "surrogateescape"))
        self.path = cache_dir() / f"{h.hexdigest()[:40]}{STACK_SUFFIX}"

    def get(self) -> str | None:
        """The verdict kept for this program, or None."""
        try:
            with open(self.path, "rb") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return None
        verdict = doc.get("verdict") if isinstance(doc, dict) else None
        return verdict if isinstance(verdict, str) else None

    def put(self, verdict: str) -> None:
        _write_atomically(self.path, {"verdict": verdict})


class BpftraceVersions:
    """What `bpftrace --version` said, kept by the bpftrace binary (real path, size, mtime): a
    probe of a new function does not start bpftrace again (some 50 ms of CPU) to learn the same
    version. One small file per bpftrace binary; an unreadable or foreign file is a miss."""

    def __init__(self, bpftrace: str):
        try:
            st = os.stat(bpftrace)
        except OSError:
            self.path = None
            return
        self.identity = [os.path.realpath(bpftrace), st.st_size, st.st_mtime_ns]
        digest = hashlib.sha256(json.dumps(self.identity).encode("utf-8", "surrogateescape")).hexdigest()[:40]
        self.path = cache_dir() / f"{digest}{BPFTRACE_SUFFIX}"

    def get(self) -> str | None:
        """The version line kept for this bpftrace, or None."""
        if self.path is None:
            return None
        try:
            with open(self.path, "rb") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("identity") != self.identity:
            return None
        said = doc.get("version")
        return said if isinstance(said, str) else None

    def put(self, version_line: str) -> None:
        if self.path is not None:
            _write_atomically(self.path, {"identity": self.identity, "version": version_line})


DECODERS_SUFFIX = ".decoders.json"  # a DecoderFacts file
DECODERS_FORMAT = 1


class DecoderFacts:
    """What Capstone says of iced-x86's instructions (verify.machine: whether it decodes an
    instruction code alike, its mnemonic, whether a return's bytes are `ret`, its operand type
    numbers), kept by the installed files of both decoders (`identity`). A header line (the
    identity and the SHA-256 of the rest) and the facts as JSON; another decoders' file, a
    stale, truncated or corrupt one is a miss (the facts are asked of Capstone again)."""

    def __init__(self, identity: list):
        self.identity = {"kind": "decoders", "format": DECODERS_FORMAT, "decoders": identity}
        digest = hashlib.sha256(json.dumps(identity).encode("utf-8", "surrogateescape")).hexdigest()[:40]
        self.path = cache_dir() / f"{digest}{DECODERS_SUFFIX}"

    def get(self) -> dict | None:
        """{"agrees": {code: bool}, "ret_named": {bytes: bool}, "mnemonics": {code: str},
        "x86_op": [REG, IMM, MEM] or None, "sampled": bool (verify.machine._learn_from_sample ran)},
        or None when no valid file is kept."""
        body = _read_digested(self.path, self.identity)
        if body is None:
            return None
        try:
            doc = json.loads(body)
            agrees = {int(k): v for k, v in doc["agrees"].items()}
            ret_named = {bytes.fromhex(k): v for k, v in doc["ret_named"].items()}
            mnemonics = {int(k): v for k, v in doc["mnemonics"].items()}
            x86_op, sampled = doc["x86_op"], doc["sampled"]
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if not (set(map(type, agrees.values())) <= {bool} and set(map(type, ret_named.values())) <= {bool}
                and set(map(type, mnemonics.values())) <= {str} and isinstance(sampled, bool)
                and (x86_op is None or (isinstance(x86_op, list) and len(x86_op) == 3
                                        and set(map(type, x86_op)) <= {int}))):
            return None
        return {"agrees": agrees, "ret_named": ret_named, "mnemonics": mnemonics, "x86_op": x86_op,
                "sampled": sampled}

    def put(self, agrees: dict[int, bool], ret_named: dict[bytes, bool], mnemonics: dict[int, str],
            x86_op, sampled: bool = False) -> None:
        body = json.dumps({"agrees": {str(k): v for k, v in agrees.items()},
                           "ret_named": {k.hex(): v for k, v in ret_named.items()},
                           "mnemonics": {str(k): v for k, v in mnemonics.items()},
                           "x86_op": list(x86_op) if x86_op is not None else None, "sampled": sampled},
                          separators=(",", ":"))
        _write_digested(self.path, self.identity, body)


def _read_digested(path: Path, identity) -> bytes | None:
    """The body of a file _write_digested wrote for `identity`, or None (none, unreadable,
    another's, or its bytes not those the header's digest names)."""
    found = _read_digested_in_place(path, identity)
    return found[0][found[1]:] if found is not None else None


def _read_digested_in_place(path: Path, identity) -> tuple[bytes, int] | None:
    """(the file's bytes, where its body starts) as _read_digested checks them, the body not
    copied out of them (1.7 MB of cmd/compile's symbols: new pages for each copy)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    end = data.find(b"\n")
    if end < 0:
        return None
    try:
        header = json.loads(data[:end])
    except ValueError:
        return None
    if (not isinstance(header, dict) or header.get("identity") != identity
            or header.get("sha256") != hashlib.sha256(memoryview(data)[end + 1:]).hexdigest()):
        return None
    return data, end + 1


def _write_digested(path: Path, identity, body: str | bytes) -> None:
    """`body` (text is written as UTF-8) under a header line: `identity` and the SHA-256 of the
    body (see _read_digested)."""
    data = body.encode() if isinstance(body, str) else body
    header = json.dumps({"identity": identity, "sha256": hashlib.sha256(data).hexdigest()}, separators=(",", ":"))
    _write_bytes_atomically(path, header.encode() + b"\n" + data)


def _write_atomically(path: Path, doc) -> None:
    """`doc` as JSON in a temporary file renamed over `path`; an unwritable directory is said once
    (a value JSON cannot hold: nothing is written)."""
    try:
        # json.dumps, not json.dump: dump writes through the pure-Python encoder (ten times slower
        # on an index with a few large units scanned)
        text = json.dumps(doc, separators=(",", ":"))
    except (TypeError, ValueError):
        return
    _write_text_atomically(path, text)


def _write_text_atomically(path: Path, text: str) -> None:
    _write_bytes_atomically(path, text.encode())


def _write_bytes_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=path.parent)
    except OSError as e:
        _notice(f"cache directory {path.parent} is not writable ({e.strerror or e}); working without a "
                f"cache (--no-cache to skip it, or set XDG_CACHE_HOME)")
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as e:
        _notice(f"cannot write the index cache {path} ({e.strerror or e}); working without a cache")
        try:
            os.unlink(tmp)
        except OSError:
            pass


SYMBOLS_SUFFIX = ".symbols.bin"  # a SymbolStore's file, beside its binary's index
SYMBOLS_FORMAT = 2
_OLD_SYMBOLS_SUFFIX = ".symbols.json"  # format 1 (all JSON): removed by clear()


class SymbolStore:
    """A binary's function symbols (name, address, size, sorted by address) and the addresses of
    its other symbols by name, as GoBinary reads them from its symbol table: every command that
    names a function looks it up among them, and decoding 30,000 ELF symbols costs more than
    reading them back. One file beside the binary's index, written once: a header line (the
    index's identity and the SHA-256 of the rest), then a JSON line (the counts, and the names
    without an address), then the names (UTF-8, NUL-separated) and the integers (unsigned 64-bit,
    little-endian) of each column: read back a fifth as slowly as the same table in JSON. A file
    of another binary, a stale, truncated or corrupt one (its digest or its shape wrong) is a
    miss, and the table is read from the binary again and the file rewritten."""

    def __init__(self, index: IndexCache):
        self.path = index.path.with_name(index.path.name[:-len(SUFFIX)] + SYMBOLS_SUFFIX)
        self.identity = dict(index.identity, kind="symbols", symbols_format=SYMBOLS_FORMAT)

    def get(self) -> "KeptSymbols | None":
        """The table kept (GoBinary's names, addresses, sizes and other addresses by name, looked
        up in place: see KeptSymbols), or None when no valid file is kept."""
        found = _read_digested_in_place(self.path, self.identity)
        if found is None:
            return None
        data, start = found
        try:
            head_end = data.index(b"\n", start)  # (ValueError without one)
            shape = json.loads(data[start:head_end])
            count, other_count, without = shape["functions"], shape["others"], shape["without_address"]
            names_bytes, other_names_bytes = shape["names_bytes"], shape["other_names_bytes"]
            if not (type(count) is int and type(other_count) is int and isinstance(without, list)
                    and set(map(type, without)) <= {str}):
                return None
            start = head_end + 1
            names = _names(data, start, names_bytes, count)
            other_names = _names(data, start + names_bytes, other_names_bytes, other_count) \
                if names is not None else None
            if names is None or other_names is None:
                return None
            end = start + names_bytes + other_names_bytes
            if len(data) - end != 8 * (2 * count + other_count):
                return None
            numbers = array.array("Q")
            numbers.frombytes(memoryview(data)[end:])
            if sys.byteorder != "little":
                numbers.byteswap()
        except (ValueError, TypeError, KeyError):  # not JSON, a count not a number, names not UTF-8
            return None
        return KeptSymbols(names, count, numbers, other_names, other_count, without)

    def put(self, names: list[str], addresses: list[int], sizes: list[int], others: dict[str, int | None]) -> None:
        with_address = [(name, address) for name, address in others.items() if address is not None]
        try:
            blob = _names_blob(names)
            other_blob = _names_blob([name for name, _ in with_address])
            numbers = array.array("Q", [*addresses, *sizes, *(address for _, address in with_address)])
        except (ValueError, OverflowError, TypeError):  # a name with a NUL, a number not a 64-bit one
            return
        if sys.byteorder != "little":
            numbers.byteswap()
        shape = json.dumps({"functions": len(names), "others": len(with_address), "names_bytes": len(blob),
                            "other_names_bytes": len(other_blob),
                            "without_address": [name for name, address in others.items() if address is None]},
                           separators=(",", ":"))
        _write_digested(self.path, self.identity, shape.encode() + b"\n" + blob + other_blob + numbers.tobytes())


def _names_blob(names: list[str]) -> bytes:
    """The names NUL-separated, as UTF-8 (a lone surrogate kept: `surrogatepass`)."""
    if any("\0" in name for name in names):
        raise ValueError("a name with a NUL")
    return "\0".join(names).encode("utf-8", "surrogatepass")


def _names(data: bytes, start: int, size, count: int) -> str | None:
    """The `count` names _names_blob wrote in the `size` bytes of `data` from `start`, as they are
    there (NUL-separated; None: not those)."""
    if type(size) is not int or not 0 <= size <= len(data) - start:
        return None
    if not (data.count(b"\0", start, start + size) + 1 == count if count else size == 0):
        return None
    return str(memoryview(data)[start:start + size], "utf-8", "surrogatepass")


def _name_starts(names: str, name: str, most: int) -> list[int]:
    """Where the first `most` names equal to `name` start in `names` (NUL-separated, at least one
    name; `name` without a NUL), in order."""
    if names == name:
        return [0]
    out = [0] if names.startswith(name + "\0") else []
    needle = "\0" + name + "\0"
    at = names.find(needle)
    while at >= 0 and len(out) < most:
        out.append(at + 1)
        at = names.find(needle, at + 1)
    if len(out) < most and names.endswith("\0" + name):
        out.append(len(names) - len(name))
    return out[:most]


class KeptSymbols:
    """The table a SymbolStore keeps, as GoBinary reads it: the function symbols (sorted by address)
    and the addresses of other names. A command on one function asks a name or two and an
    address of it: they are looked up where they lie (the names NUL-separated, the numbers in
    one array), as making cmd/compile's 20,000 names and 10,000 others into lists and a dict cost
    ~6 ms of a warm run. `names`, `addresses`, `sizes` and `others` are all of them, made when asked."""

    def __init__(self, names: str, count: int, numbers: array.array, other_names: str, other_count: int,
                 without: list[str]):
        self.count = count
        self._names = names  # the function names, NUL-separated
        self._numbers = numbers  # addresses, sizes, then the other names' addresses
        self._other_names = other_names
        self._other_count = other_count
        self._without = without  # names with no address (a function symbol's name that another has first)

    def positions(self, name: str, most: int) -> list[int]:
        """The indices of the first `most` function symbols named `name`, in order."""
        if not self.count or "\0" in name:
            return []
        names = self._names
        return [names.count("\0", 0, at) for at in _name_starts(names, name, most)]  # (a NUL after each name before)

    def _index(self, i: int) -> int:
        if not 0 <= i < self.count:
            raise IndexError("symbol index out of range")
        return i

    def name(self, i: int) -> str:
        return self._names.split("\0", self._index(i) + 1)[i]

    def address(self, i: int) -> int:
        return self._numbers[self._index(i)]

    def size(self, i: int) -> int:
        return self._numbers[self.count + self._index(i)]

    @property
    def address_column(self) -> array.array:
        """The function symbols' addresses, in order (for a search: bisect reads an array)."""
        return self._numbers[:self.count]

    def other_address(self, name: str) -> tuple[bool, int | None]:
        """(True, its address, or None for a name without one) when `others` holds `name`, else
        (False, None)."""
        if name in self._without:
            return True, None
        if "\0" in name or not self._other_count:
            return False, None
        starts = _name_starts(self._other_names, name, self._other_count)
        if not starts:
            return False, None
        # (the last of a name, as dict() keeps it)
        return True, self._numbers[2 * self.count + self._other_names.count("\0", 0, starts[-1])]

    @property
    def names(self) -> list[str]:
        return self._names.split("\0") if self.count else []

    @property
    def addresses(self) -> list[int]:
        return self._numbers[:self.count].tolist()

    @property
    def sizes(self) -> list[int]:
        return self._numbers[self.count:2 * self.count].tolist()

    @property
    def others(self) -> dict[str, int | None]:
        """Other addresses by name (GoBinary._other_addresses')."""
        names = self._other_names.split("\0") if self._other_count else []
        found: dict[str, int | None] = dict(zip(names, self._numbers[2 * self.count:].tolist()))
        found.update((name, None) for name in self._without)
        return found


SECTION_SUFFIX = ".section.bin"  # a SectionStore's files, beside their binary's index
SECTION_FORMAT = 3
_HEADER_LIMIT = 1 << 16  # the longest header line a section file may have


class MappedSection(mmap.mmap):
    """A kept section's inflated bytes, mapped read-only from its file (not copied: reading 14 MB
    back cost a warm command on cmd/compile ~11 ms, mapping it and checking its CRC ~4 ms). It is
    both the section's stream (read, seek, tell: what pyelftools uses) and its bytes (`getvalue()`:
    indexing and slicing, what the raw scanners use, and `index` as bytes have it)."""

    def getvalue(self) -> "MappedSection":
        return self

    def index(self, sub, start: int = 0, end: int | None = None) -> int:
        found = self.find(bytes((sub,)) if isinstance(sub, int) else sub, start, len(self) if end is None else end)
        if found < 0:
            raise ValueError("subsection not found")
        return found


class SectionStore:
    """A binary's large compressed DWARF sections (.debug_info, location lists), kept inflated:
    inflating them is most of what a command on one function reads. One file per section beside
    the binary's index: a header line (the index's identity, the section's name, place and sizes,
    and the CRC-32 of the bytes: a flipped bit, a torn or mixed write is found in half the time
    SHA-256 takes over 14 MB), padded with spaces to a whole number of pages so that the inflated
    bytes after it can be mapped (MappedSection). Another binary's file, a stale, truncated or
    corrupt one is a miss: the section is inflated from the binary again and the file rewritten.
    (The files are only ever replaced by a rename, never rewritten in place, so a mapping stays
    valid while a command runs.)"""

    def __init__(self, index: IndexCache):
        self._stem = index.path.name[:-len(SUFFIX)]
        self._dir = index.path.parent
        self._identity = dict(index.identity, kind="section", section_format=SECTION_FORMAT)

    def path(self, name: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in name.lstrip("."))[:40]
        return self._dir / f"{self._stem}.{safe}{SECTION_SUFFIX}"

    def _identity_of(self, name: str, offset: int, stored_size: int, size: int) -> dict:
        return dict(self._identity, section=name, offset=offset, stored_size=stored_size, inflated_size=size)

    def get(self, name: str, offset: int, stored_size: int, size: int) -> MappedSection | None:
        """The inflated bytes of the section `name` stored at `offset` (`stored_size` bytes in the
        file, `size` inflated), or None when no valid file keeps them."""
        try:
            with open(self.path(name), "rb") as fh:
                head = fh.readline(_HEADER_LIMIT)
                if (not head.endswith(b"\n") or len(head) % mmap.ALLOCATIONGRANULARITY or size <= 0
                        or os.fstat(fh.fileno()).st_size != len(head) + size):
                    return None
                header = json.loads(head)
                if not isinstance(header, dict) or header.get("identity") != self._identity_of(name, offset,
                                                                                               stored_size, size):
                    return None
                data = MappedSection(fh.fileno(), size, offset=len(head), access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        if header.get("crc32") != zlib.crc32(data):
            data.close()
            return None
        return data

    def put(self, name: str, offset: int, stored_size: int, size: int, data: bytes) -> None:
        header = json.dumps({"identity": self._identity_of(name, offset, stored_size, size),
                             "crc32": zlib.crc32(data)}, separators=(",", ":")).encode()
        page = mmap.ALLOCATIONGRANULARITY
        room = -(-(len(header) + 1) // page) * page
        if room > _HEADER_LIMIT:
            return  # (an identity this long: a debug file's path of tens of kilobytes) not kept
        _write_bytes_atomically(self.path(name), header.ljust(room - 1) + b"\n" + data)


_CODE_IDENTITY: list[str] = []  # _code_identity's answer, once per process


def _code_identity() -> str:
    """Which dwarfgo computed a stored result: its version and the size and mtime of every
    module of the package (a result made by other code, even an uninstalled edit, is not used)."""
    if _CODE_IDENTITY:
        return _CODE_IDENTITY[0]
    from . import __version__
    root = os.path.dirname(os.path.realpath(__file__))
    modules = []  # (path relative to the package, size, mtime)
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                modules.append((os.path.relpath(os.path.join(folder, name), root), st.st_size, st.st_mtime_ns))
    h = hashlib.sha256(__version__.encode())
    for relative, size, mtime in sorted(modules):
        h.update(f"{relative}\0{size}\0{mtime}\0".encode("utf-8", "replace"))
    _CODE_IDENTITY.append(h.hexdigest()[:32])
    return _CODE_IDENTITY[0]


class ResultStore:
    """What one whole-binary command computed per function (`funcs`' lines, `abi`'s evidence),
    kept beside the index in a file of its own (so that `sig` does not read it), for the same
    binary and the same dwarfgo code. Keys are `"<address hex> <symbol>"`; a value is the
    command's result for that function (JSON: tuples come back as tuples), or None for a
    function the command leaves out."""

    def __init__(self, index: IndexCache, kind: str):
        self.kind = kind
        self.path = index.path.with_name(index.path.name[:-len(SUFFIX)] + f".{kind}" + RESULTS_SUFFIX)
        self.identity = dict(index.identity, kind=kind, code=_code_identity())
        self.results: dict[str, object] = {}
        self._added = 0
        try:
            with open(self.path, "rb") as fh:
                doc = json.load(fh)
            if isinstance(doc, dict) and doc.get("identity") == self.identity and isinstance(doc.get("results"), dict):
                self.results = doc["results"]
        except (OSError, ValueError):  # none yet, unreadable, or not JSON: rebuilt
            pass

    @staticmethod
    def key(address: int, name: str) -> str:
        return f"{address:x} {name}"

    def get(self, key: str):
        """(True, result) when stored, else (False, None)."""
        if key not in self.results:
            return False, None
        return True, _thaw(self.results[key])

    def put(self, key: str, result) -> None:
        try:
            self.results[key] = _freeze(result)
        except ValueError:
            return  # not storable: computed again next time
        self._added += 1

    def save(self) -> None:
        if self._added:
            self._added = 0
            _write_atomically(self.path, {"identity": self.identity, "results": self.results})


def result_key(key: list, binary_path) -> str:
    """A ResultStore key for one command's answer: `key` (the query and the options) and the
    binary's path as given and resolved (answers name it)."""
    path = Path(binary_path)
    return json.dumps([*key, str(path), str(path.resolve())])


def stored_result(binary_path, kind: str, key: list):
    """(True, answer) when a command's answer (GoProgram.remembered) is stored for this binary
    and this dwarfgo code, else (False, None), found without opening the binary through
    pyelftools: its identity (build ID, size, mtime) is read with elfhead. Only a binary that
    holds its own DWARF is answered so (a separate debug file is part of the identity)."""
    from .elfhead import read_head

    try:
        st = os.stat(binary_path)
    except OSError:
        return False, None
    if not stat.S_ISREG(st.st_mode):  # never opened here: a FIFO would block (GoBinary says what it is)
        return False, None
    head = read_head(binary_path)
    if head is None or head.build_id is None or not head.has_dwarf:
        return False, None
    store = ResultStore(IndexCache.keyed(head.build_id, st), kind)
    return store.get(result_key(key, binary_path))


def _freeze(value):
    """JSON for a result: a tuple is kept as {"tuple": [...]} (lists and dicts as they are)."""
    if isinstance(value, tuple):
        return {"tuple": [_freeze(v) for v in value]}
    if isinstance(value, list):
        return [_freeze(v) for v in value]
    if isinstance(value, dict):
        if "tuple" in value and len(value) == 1:
            raise ValueError("a result dict with the single key 'tuple' cannot be stored")
        return {k: _freeze(v) for k, v in value.items()}
    return value


def _thaw(value):
    if isinstance(value, list):
        return [_thaw(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "tuple" in value:
            return tuple(_thaw(v) for v in value["tuple"])
        return {k: _thaw(v) for k, v in value.items()}
    return value


def _int_table(table: dict) -> dict[int, int]:
    if not (set(map(type, table)) <= {int} and set(map(type, table.values())) <= {int}):
        raise TypeError("a table of other than integers")
    return table


def _int(value) -> int:
    if type(value) is not int:
        raise TypeError("not an integer")
    return value


def _str(value) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


# ------------------------------------------------------------ the `dwarfgo cache` command
@dataclass(frozen=True)
class CacheSummary:
    directory: Path
    files: int
    bytes: int


def summary() -> CacheSummary:
    """The index files (one per binary), and the bytes they and their stored results take."""
    d = cache_dir()
    files = [f for f in d.glob("*" + SUFFIX) if not f.name.startswith(".")] if d.is_dir() else []
    results = [f for f in d.glob("*" + RESULTS_SUFFIX) if not f.name.startswith(".")] if d.is_dir() else []
    results += [f for f in d.glob("*" + SYMBOLS_SUFFIX) if not f.name.startswith(".")] if d.is_dir() else []
    results += [f for f in d.glob("*" + SECTION_SUFFIX) if not f.name.startswith(".")] if d.is_dir() else []
    return CacheSummary(d, len(files), sum(f.stat().st_size for f in files + results if f.is_file()))


def clear() -> int:
    """Remove every index file (and leftover temporary ones); the number removed."""
    d = cache_dir()
    if not d.is_dir():
        return 0
    removed = 0
    for f in d.glob("*" + SUFFIX):  # with leftover temporary files (.tmp-*), not counted
        f.unlink(missing_ok=True)
        removed += not f.name.startswith(".")
    for f in d.glob("*" + RESULTS_SUFFIX):  # the stored results go with their index
        f.unlink(missing_ok=True)
    for f in [*d.glob("*" + SYMBOLS_SUFFIX), *d.glob("*" + _OLD_SYMBOLS_SUFFIX)]:  # the symbol tables and
        f.unlink(missing_ok=True)  # inflated sections go with their index too
    for f in d.glob("*" + SECTION_SUFFIX):
        f.unlink(missing_ok=True)
    for f in d.glob("*" + STACK_SUFFIX):  # bpftrace's stack verdicts on readable programs
        f.unlink(missing_ok=True)
    for f in d.glob("*" + BPFTRACE_SUFFIX):  # bpftrace's versions
        f.unlink(missing_ok=True)
    for f in d.glob("*" + DECODERS_SUFFIX):  # what Capstone says of iced-x86's instructions
        f.unlink(missing_ok=True)
    return removed


__all__ = ["IndexCache", "ResultStore", "SymbolStore", "KeptSymbols", "SectionStore", "result_key", "stored_result", "StackVerdicts", "BpftraceVersions", "DecoderFacts", "UnitRecord", "cache_dir", "summary", "clear", "FORMAT_VERSION"]
