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
