"""The whole-binary signature audit (scripts/audit-signatures) on a real program: gofmt built
from the GOROOT of Go 1.15, 1.19, 1.22 and 1.27 (about 25 s each). Every function whose signature
the source gives (go/types, scripts/sourcesigs -program) must match `dwarfgo sig`; what cannot
be derived is counted apart with its reason, and must stay a minority."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import pytest

from conftest import REPO, TOOLCHAINS, gofmt_binary, require_file


def _audit_module():
    loader = importlib.machinery.SourceFileLoader("audit_signatures", str(REPO / "scripts" / "audit-signatures"))
    spec = importlib.util.spec_from_loader("audit_signatures", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _versions() -> list[str]:
    return ["1.15", "1.19", "1.22", "1.27"]  # the representative versions of the matrix


@pytest.mark.matrix
@pytest.mark.parametrize("go", _versions())
def test_gofmt_signatures_match_source(go):
    wrapper = TOOLCHAINS / "bin" / f"go{go}"
    binary, goroot = gofmt_binary(go)
    r = _audit_module().audit(str(binary), f"{goroot}/src/cmd/gofmt", str(wrapper), show=5)
    assert r["different"] == 0, r["examples"]
    assert r["audited"] == r["equal"]
    assert r["audited"] > 2000, r
    assert r["not_derivable"] < r["audited"] / 3, r["not_derivable_by_reason"]


FIXTURE_NAMES = ("shapes", "demo", "stackgrowth", "concurrent", "coldmem")


@pytest.mark.matrix
@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
@pytest.mark.parametrize("go", ["1.15", "1.19", "1.22", "1.27"])
def test_fixture_whole_binary_audit(go, fixture):
    """Every function of a fixture binary (its own and the standard library's), not only the
    probed ones: zero differences with the source."""
    from conftest import FIXTURES

    binary = FIXTURES / f"go{go}" / "amd64" / "default" / fixture
    require_file(binary, "fixture binary")
    wrapper = TOOLCHAINS / "bin" / f"go{go}"
    r = _audit_module().audit(str(binary), str(REPO / "fixtures" / fixture), str(wrapper), show=5)
    assert r["different"] == 0, r["examples"]
    assert r["audited"] > 1000, r
