"""Errors that dwarfgo reports to a user as one clear line (the CLI never shows a traceback)."""


class DwarfgoError(Exception):
    """Base class: the message is complete and user-facing."""


class BinaryError(DwarfgoError):
    """The file cannot be used: missing, unreadable, not ELF, not Go."""


class NoDwarfError(DwarfgoError):
    """The Go binary carries no DWARF (built with -ldflags=-w, or stripped)."""


class FunctionNotFound(DwarfgoError):
    def __init__(self, query: str, suggestions: list[str]):
        self.query = query
        self.suggestions = suggestions
        msg = f"no function matches {query!r}"
        if suggestions:
            msg += "; did you mean: " + ", ".join(suggestions)
        super().__init__(msg)


class AmbiguousFunction(DwarfgoError):
    def __init__(self, query: str, candidates: list[str], unique: list[str] | None = None):
        self.query = query
        self.candidates = candidates  # full symbol names
        self.unique = unique or candidates[:12]  # each candidate's shortest unique name, as listed
        shown = self.unique[:12]
        more = f" (and {len(candidates) - len(shown)} more)" if len(candidates) > len(shown) else ""
        super().__init__(
            f"{query!r} is ambiguous; {len(candidates)} functions match: "
            + ", ".join(shown) + more + ". Use one of these names, or the full symbol name."
        )


class TypeNotFound(DwarfgoError):
    def __init__(self, query: str, suggestions: list[str]):
        msg = f"no type named {query!r}"
        if suggestions:
            msg += "; did you mean: " + ", ".join(suggestions)
        super().__init__(msg)


class DamagedBinary(BinaryError):
    """The file is damaged, truncated or crafted: a structure in it cannot be parsed."""


def _parse_errors() -> tuple[type[BaseException], ...]:
    import struct
    import zlib

    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.construct.core import ConstructError
    # What pyelftools (and our own readers of the file's bytes) raise on damaged data: its own
    # errors, failed asserts, and the lookups and conversions a bad offset, form or size breaks.
    return (ELFError, DWARFError, ConstructError, zlib.error, AssertionError, KeyError, IndexError, struct.error,
            OverflowError, UnicodeDecodeError, ZeroDivisionError, ValueError, RecursionError)


_ERRORS: dict[str, tuple[type[BaseException], ...]] = {}


def __getattr__(name: str):
    """PARSE_ERRORS and READ_ERRORS, made on first use (they import pyelftools, which a command
    answered from the cache never needs)."""
    if name not in ("PARSE_ERRORS", "READ_ERRORS"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _ERRORS:
        _ERRORS["PARSE_ERRORS"] = parse = _parse_errors()
        # inside a `reading` block only the file's data is interpreted: a TypeError or an
        # AttributeError there is a value of the wrong form (bytes for a size, None for a DIE),
        # and an OSError a seek to an offset no file has (negative, past 2^63)
        _ERRORS["READ_ERRORS"] = parse + (TypeError, AttributeError, OSError)
    return _ERRORS[name]


def describe(e: BaseException, limit: int = 160) -> str:
    """One line about a parse error: its type and message, shortened."""
    text = " ".join(str(e).split()) or "no detail"
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(e).__name__}: {text}"


class reading:
    """`with reading(path, "DWARF in .debug_info at offset 0x1f0"):` turns a parse error raised
    inside into one DamagedBinary line naming what is damaged. DwarfgoErrors pass through."""

    def __init__(self, path, what: str):
        self.path = path
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, e, tb) -> bool:
        if e is None or isinstance(e, DwarfgoError) or not isinstance(e, __getattr__("READ_ERRORS")):
            return False
        raise DamagedBinary(f"{self.path}: damaged {self.what}: {describe(e)}") from None
