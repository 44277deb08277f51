"""dwarfgo: read a Go binary's DWARF (functions, types, argument locations) and generate bpftrace probes.

Layers, bottom up: binary (ELF) -> dwarf + gotypes + functions (the model) -> emitters
(cheaders) -> cli. `dwarfgo.program.GoProgram` is the library's entry point.
"""

__version__ = "0.1.0"


YOUNG_OBJECTS = 100_000  # objects allocated between two collections of the youngest generation (Python's: 700)


def fewer_collections() -> None:
    """For the command line (cli.run, and `python -m dwarfgo` before it imports the rest): the
    cyclic garbage collector runs after YOUNG_OBJECTS new objects, not 700. A command on one
    function allocates some 50,000 that live to its end (modules, classes, DIEs), and the 75
    collections that looked at them found nothing to free (17 ms of a warm probe on cmd/compile);
    a whole-binary `funcs` spent 0.1 s of its process in 345. A long run still collects, as
    often per object allocated as before (each object is examined once per generation), and
    Python frees what no cycle holds when its last reference goes, without the collector. Not
    called on a library import."""
    import gc
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
