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

import hashlib
import json
import os
import stat
import sys
import tempfile
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
        self._loaded = False  # a valid file of this binary was read
        self._read = False
        self._dirty = False
        self._discarded = False

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

    def _take(self, doc) -> None:
        if not isinstance(doc, dict) or doc.get("identity") != self.identity:
            return  # another binary's, a stale or a foreign file
        units = doc["units"]
        if units is not None:
            self._units = [UnitRecord(_int(u[0]), _str(u[1]), _str(u[2]), [(_int(lo), _int(hi)) for lo, hi in u[3]])
                           for u in units]
        self._subprograms = {_int(int(k)): {_int(a): _int(o) for a, o in v} for k, v in doc["subprograms"].items()}
        types = doc["types"]
        self._types = {_str(k): _int(v) for k, v in types.items()} if types is not None else None
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

    def discard(self) -> None:
        """Forget everything: a looked-up DIE did not match what the index said it is."""
        self._read = True
        self._units, self._subprograms, self._types = None, {}, None
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
        if not self._discarded:
            other = IndexCache(self.path, self.identity)  # another process's additions, if any
            for offset, table in other.subprograms.items():
                self._subprograms.setdefault(offset, table)
            if self._types is None:
                self._types = other.types
            if self._units is None:
                self._units = other.units
        doc = {"identity": self.identity,
               "units": None if self._units is None else [[u.offset, u.name, u.producer, u.ranges] for u in self._units],
               "subprograms": {str(k): sorted(v.items()) for k, v in self._subprograms.items()},
               "types": self._types}
        _write_atomically(self.path, doc)


def _index_path(build_id: str, size: int) -> Path:
    return cache_dir() / (hashlib.sha256(f"{build_id}\0{size}".encode("utf-8", "replace")).hexdigest()[:32] + SUFFIX)


STACK_SUFFIX = ".stack.json"  # a StackVerdicts file


class StackVerdicts:
    """Whether bpftrace before 0.23 refused a readable program for its 512-byte stack, kept by
    the bpftrace binary (path, size, mtime), its flags and environment, and the program's text:
    the same program is not compiled again to learn the same answer."""

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

    def get(self) -> bool | None:
        """The verdict kept for this program (True: refused), or None."""
        try:
            with open(self.path, "rb") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return None
        over = doc.get("over") if isinstance(doc, dict) else None
        return over if isinstance(over, bool) else None

    def put(self, over: bool) -> None:
        _write_atomically(self.path, {"over": over})


def _write_atomically(path: Path, doc) -> None:
    """`doc` as JSON in a temporary file renamed over `path`; an unwritable directory is said once."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=path.parent)
    except OSError as e:
        _notice(f"cache directory {path.parent} is not writable ({e.strerror or e}); working without a "
                f"cache (--no-cache to skip it, or set XDG_CACHE_HOME)")
        return
    try:
        with os.fdopen(fd, "w") as fh:
            # dumps, not dump: only a one-shot encoding uses the C encoder (json.dump writes
            # through the pure-Python one: 0.2 s for the 7.7 MB of abi '*' over cmd/compile)
            fh.write(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError) as e:  # (TypeError, ValueError: a value JSON cannot hold)
        if isinstance(e, OSError):
            _notice(f"cannot write the index cache {path} ({e.strerror or e}); working without a cache")
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _code_identity() -> str:
    """Which dwarfgo computed a stored result: its version and the size and mtime of every
    module of the package (a result made by other code, even an uninstalled edit, is not used)."""
    from . import __version__
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(__version__.encode())
    for f in sorted(root.rglob("*.py")):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf-8", "replace"))
    return h.hexdigest()[:32]


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
    for f in d.glob("*" + STACK_SUFFIX):  # bpftrace's stack verdicts on readable programs
        f.unlink(missing_ok=True)
    return removed


__all__ = ["IndexCache", "ResultStore", "result_key", "stored_result", "StackVerdicts", "UnitRecord", "cache_dir", "summary", "clear", "FORMAT_VERSION"]
