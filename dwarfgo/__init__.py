"""dwarfgo: read a Go binary's DWARF (functions, types, argument locations) and generate bpftrace probes.

Layers, bottom up: binary (ELF) -> dwarf + gotypes + functions (the model) -> emitters
(cheaders) -> cli. `dwarfgo.program.GoProgram` is the library's entry point.
"""

__version__ = "0.1.0"
