"""Whole-binary results kept in the index cache (indexcache.ResultStore): `funcs` and `abi`
read from the store on a second run what the first computed.

The reference is the path without a cache (every function modelled through pyelftools): a warm
run must print exactly what it prints, over every function of Go 1.15 and 1.27 binaries;
the demo's `(*BarrierView).Put` line is checked against fixtures/demo/main.go.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REPO, require_file
from dwarfgo import indexcache
from dwarfgo.cli import _function_json, _function_line, app
from dwarfgo.functions import FunctionTable
from dwarfgo.program import GoProgram

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
PUT = "func (v *main.BarrierView) Put(ctx context.Context, entry *main.StorageEntry) error"


def _no_modelling(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a function was modelled on a warm run")
    monkeypatch.setattr(FunctionTable, "at", refuse)


def _stored(prog_path, task, kind, **kw) -> list:
    with GoProgram(prog_path) as prog:
        return list(prog.map_matching(None, task, workers=1, store_as=kind, **kw))


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_warm_funcs_is_exactly_the_uncached_listing_over_every_function(go, cache_home, monkeypatch):
    """The cold run computes (and stores) every function through the uncached path; the warm
    run, which models none, must give back exactly that."""
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    task, kind = (_function_json, "funcs-json") if go == "1.27" else (_function_line, "funcs")
    with GoProgram(path, cache=False) as prog:
        symbols = len(prog.binary.function_symbols)
    cold = _stored(path, task, kind)
    assert 1000 < len(cold) <= symbols
    _no_modelling(monkeypatch)
    assert _stored(path, task, kind) == cold


def test_cli_funcs_and_abi_print_the_same_warm_and_do_not_model_again(tmp_path, cache_home, monkeypatch):
    demo = tmp_path / "demo"
    shutil.copy2(DEMO, demo)
    runner = CliRunner()
    commands = [["funcs", str(demo), "main."], ["funcs", str(demo), "main.", "--json"], ["abi", str(demo), "main.*"],
                ["abi", str(demo), "main.*", "--json"]]
    reference = [runner.invoke(app, c + ["--no-cache"]) for c in commands]
    cold = [runner.invoke(app, c) for c in commands]
    # per function for the listings, and each command's answer (for `abi`: that the pattern
    # names no one function)
    assert sorted(p.name.split(".")[1] for p in cache_home.glob("*" + indexcache.RESULTS_SUFFIX)) == [
        "abi", "abi-json", "abi-one", "abi-one-json", "funcs", "funcs-json", "funcs-pattern", "funcs-pattern-json"]
    _no_modelling(monkeypatch)
    warm = [runner.invoke(app, c) for c in commands]
    for ref, c, w in zip(reference, cold, warm):
        assert (ref.exit_code, ref.stdout) == (c.exit_code, c.stdout) == (w.exit_code, w.stdout)
    assert any(line.endswith("  main.(*BarrierView).Put  " + PUT) for line in warm[0].stdout.splitlines())
    units = json.loads(warm[3].stdout)["units"]  # the tuples of `abi`'s results survive the store
    assert [u["name"] for u in units] == ["main"]


def test_a_store_of_other_code_or_a_corrupt_store_is_recomputed(tmp_path, cache_home, monkeypatch):
    demo = tmp_path / "demo"
    shutil.copy2(DEMO, demo)
    with GoProgram(demo, cache=False) as prog:
        want = list(prog.map_matching("main.", _function_line, workers=1))
    with GoProgram(demo) as prog:
        assert list(prog.map_matching("main.", _function_line, workers=1, store_as="funcs")) == want
    [store] = cache_home.glob("*" + indexcache.RESULTS_SUFFIX)
    doc = json.loads(store.read_text())
    assert len(doc["results"]) == len(want)
    # another dwarfgo's results (a fix since): not used, whatever they say
    doc["identity"]["code"] = "0" * 32
    doc["results"] = {k: "stale" for k in doc["results"]}
    store.write_text(json.dumps(doc))
    with GoProgram(demo) as prog:
        assert list(prog.map_matching("main.", _function_line, workers=1, store_as="funcs")) == want
    for content in ("{not json", "[]", '{"identity": 1, "results": 2}'):
        store.write_text(content)
        with GoProgram(demo) as prog:
            assert list(prog.map_matching("main.", _function_line, workers=1, store_as="funcs")) == want
    assert json.loads(store.read_text())["identity"]["code"] != "0" * 32


def test_the_store_goes_with_cache_clear(tmp_path, cache_home):
    demo = tmp_path / "demo"
    shutil.copy2(DEMO, demo)
    with GoProgram(demo) as prog:
        assert list(prog.map_matching("main.checkKey", _function_line, workers=1, store_as="funcs"))
    assert len(list(cache_home.glob("*" + indexcache.RESULTS_SUFFIX))) == 1
    assert indexcache.summary().files == 1
    assert indexcache.clear() == 1
    assert os.listdir(cache_home) == []
