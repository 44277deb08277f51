"""The Go build information blob (`.go.buildinfo`): Go version, main package and module, and
the build settings, which survive `-ldflags='-s -w'`; and the command that rebuilds the same
program with DWARF (the twin `--debug-from` takes).

Layout (the runtime's debug/buildinfo reader, runtime/debug/mod.go):
  a 32-byte header: "\\xff Go buildinf:", pointer size, flags (bit 1: strings inline, Go 1.18+)
  Go 1.18+:  two varint-length-prefixed strings after the header: the version, the module info
  Go <=1.17: two pointers at offset 16 to string headers (data pointer, length) of the same
  The module info is framed by 16 sentinel bytes at each end; inside, lines `path\\tP`,
  `mod\\tPATH\\tVERSION\\tSUM`, `dep\\t...`, `=>\\t...` and (Go 1.18+) `build\\tKEY=VALUE`, a value
  with spaces or quotes written as a Go quoted string.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from .errors import BinaryError, reading
from .varint import uvarint as _uvarint

MAGIC = b"\xff Go buildinf:"
_FLAG_INLINE = 2
_MAX_STRING = 1 << 20
# the link flags that drop the symbol table and DWARF
STRIP_FLAGS = frozenset({"-s", "-w", "--s", "--w", "-s=true", "-w=true", "-s=1", "-w=1"})


@dataclass(frozen=True)
class BuildInfo:
    go_version: str | None
    path: str | None  # the main package's import path (`command-line-arguments` for files)
    module: str | None  # the main module's path
    module_version: str | None
    settings: dict[str, str] = field(default_factory=dict)  # `build` lines, in order
    deps: tuple[str, ...] = ()  # `dep`/`=>` lines as they are

    @property
    def has_settings(self) -> bool:
        """Go 1.18+ records the build settings; older versions record none."""
        return bool(self.settings)

    @property
    def ldflags(self) -> list[str]:
        return shlex.split(self.settings.get("-ldflags", ""))

    def ldflags_without_strip(self) -> list[str]:
        return [f for f in self.ldflags if f not in STRIP_FLAGS]

    def strips(self) -> bool:
        return any(f in STRIP_FLAGS for f in self.ldflags)

    def comparable_settings(self) -> dict[str, str]:
        """The settings that must be equal between a stripped build and its DWARF twin: all but
        the strip flags (-s, -w) inside -ldflags, and the VCS time and state of the checkout."""
        out = {k: v for k, v in self.settings.items() if k not in ("-ldflags", "vcs.time")}
        rest = self.ldflags_without_strip()
        if rest:
            out["-ldflags"] = " ".join(rest)
        return out

    def rebuild_command(self, output: str = "TWIN") -> str:
        """The `go build` that makes the same program with DWARF and a symbol table."""
        s = self.settings
        # the environment the settings record: GOOS, GOARCH, CGO_ENABLED, GOAMD64, GOEXPERIMENT, CGO_CFLAGS...
        env = [f"{k}={shlex.quote(v)}" for k, v in s.items() if k.isupper() and (k.startswith("GO") or k.startswith("CGO_"))]
        from .binary import parse_go_version
        version = parse_go_version(self.go_version)
        if version and version[:2] >= (1, 21):
            env.insert(0, f"GOTOOLCHAIN={self.go_version}")
        args = ["go", "build"]
        for key in ("-buildmode", "-compiler", "-tags", "-gcflags", "-asmflags", "-race", "-msan", "-asan",
                    "-covermode"):
            if key in s and not (key == "-buildmode" and s[key] == "exe") and not (key == "-compiler" and s[key] == "gc"):
                args.append(f"{key}={s[key]}")
        if s.get("-trimpath") == "true":
            args.append("-trimpath")
        ld = self.ldflags_without_strip()
        if ld:
            args.append("-ldflags=" + " ".join(ld))
        args += ["-o", output, self.path or "."]
        cmd = " ".join(env + [shlex.quote(a) for a in args])
        if not (version and version[:2] >= (1, 21)):
            cmd = f"with {self.go_version or 'the same Go version'}: {cmd}"
        if self.path == "command-line-arguments":
            cmd = cmd.replace(" command-line-arguments", " FILES.go") + "  (built from files: name the same .go files)"
        if "vcs.revision" in s:
            cmd += f"  (from a checkout of {s.get('vcs', 'vcs')} revision {s['vcs.revision']}"
            cmd += ", with the same local changes)" if s.get("vcs.modified") == "true" else ")"
        elif not self.has_settings:
            cmd += f"  ({self.go_version or 'this Go version'} records no build settings: add the flags, tags " \
                   f"and environment of the original build, except -s and -w)"
        return cmd


def _blob(binary) -> tuple[int, bytes] | None:
    """(address, bytes) of the build info: its section, else its header found in the writable data."""
    sec = binary.elf.get_section_by_name(".go.buildinfo")
    if sec is not None and sec["sh_type"] != "SHT_NOBITS":
        return sec["sh_addr"], sec.data()
    for seg in binary.elf.iter_segments():
        if seg["p_type"] != "PT_LOAD" or not seg["p_flags"] & 2:
            continue
        data = seg.data()
        at = data.find(MAGIC)
        while at >= 0 and at % 16:
            at = data.find(MAGIC, at + 1)
        if at >= 0:
            return seg["p_vaddr"] + at, data[at:]
    return None


def _strings(binary, data: bytes) -> tuple[str, str]:
    ptr, flags = data[14], data[15]
    if flags & _FLAG_INLINE:
        n, off = _uvarint(data, 32)
        version = data[off : off + n]
        m, off = _uvarint(data, off + n)
        if n > _MAX_STRING or m > _MAX_STRING:
            raise ValueError("string longer than the blob")
        return version.decode("utf-8", "replace"), data[off : off + m].decode("utf-8", "replace")
    order = "little" if binary.elf.little_endian else "big"

    def go_string(at: int) -> str:
        hdr = binary.read_memory(int.from_bytes(data[at : at + ptr], order), 2 * ptr)
        addr, length = int.from_bytes(hdr[:ptr], order), int.from_bytes(hdr[ptr:], order)
        if length > _MAX_STRING:
            raise ValueError("string longer than 1 MiB")
        return binary.read_memory(addr, length).decode("utf-8", "replace") if length else ""

    return go_string(16), go_string(16 + ptr)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == "`":
        return value[1:-1]
    return value


def parse_modinfo(version: str | None, modinfo: str) -> BuildInfo:
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        modinfo = modinfo[16:-16]
    path = module = module_version = None
    settings: dict[str, str] = {}
    deps: list[str] = []
    for line in modinfo.splitlines():
        word, _, rest = line.partition("\t")
        if word == "path":
            path = rest
        elif word == "mod":
            parts = rest.split("\t")
            module, module_version = parts[0], (parts[1] if len(parts) > 1 else None)
        elif word in ("dep", "=>"):
            deps.append(line)
        elif word == "build":
            key, _, value = rest.partition("=")
            settings[key] = _unquote(value)
    return BuildInfo(version, path, module, module_version, settings, tuple(deps))


def read_buildinfo(binary) -> BuildInfo | None:
    """The binary's build information, or None if it has none (not a Go binary, or Go < 1.13)."""
    with reading(binary.path, "Go build information (.go.buildinfo)"):
        found = _blob(binary)
        if found is None or not found[1].startswith(MAGIC) or len(found[1]) < 32:
            return None
        try:
            version, modinfo = _strings(binary, found[1])
        except BinaryError:
            return None  # pointers to nowhere: say nothing rather than guess
        return parse_modinfo(version or None, modinfo)
