"""The stand-in binary the 0.17 stack check compiles against (emit/stackcheck.py): an ELF file of
the traced binary's class, byte order and machine, with nothing in it to read."""

from __future__ import annotations

import os
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from conftest import FIXTURES, require_file
from dwarfgo.emit.stackcheck import _write_stand_in


@pytest.mark.parametrize("go, arch", [("1.15", "amd64"), ("1.27", "arm64")])
def test_the_stand_in_is_an_empty_elf_of_the_binarys_kind(go, arch, tmp_path):
    binary = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(binary, "fixture")
    stand_in = tmp_path / "stand-in"
    assert _write_stand_in(str(binary), str(stand_in)) is True
    assert os.access(stand_in, os.X_OK)
    # readelf (binutils), not the code under test, says what the stand-in is
    original = subprocess.run(["readelf", "-h", str(binary)], capture_output=True, text=True, check=True).stdout
    header = subprocess.run(["readelf", "-hSl", str(stand_in)], capture_output=True, text=True, check=True).stdout

    def field(text: str, name: str) -> str:
        return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith(name + ":"))

    for name in ("Class", "Data", "Type", "Machine", "Entry point address"):
        assert field(header, name) == field(original, name), name
    assert field(header, "Number of section headers") == "0"
    assert field(header, "Number of program headers") == "0"
    assert "There are no sections" in header
    with open(stand_in, "rb") as f:
        assert ELFFile(f).has_dwarf_info() is False


def test_no_stand_in_for_a_file_that_is_not_elf(tmp_path):
    text = tmp_path / "script"
    text.write_text("#!/bin/sh\necho 'not an ELF file, but long enough to hold a 64-byte header, if it were one'\n")
    assert _write_stand_in(str(text), str(tmp_path / "out")) is False
    assert _write_stand_in(str(tmp_path / "missing"), str(tmp_path / "out")) is False
    assert not (tmp_path / "out").exists()
