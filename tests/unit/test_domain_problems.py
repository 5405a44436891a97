"""Domain errors become problem details in one place: each service's ProblemMap, applied by
the app's exception handlers. A route lets the error through; the map says its status,
title, type, detail and Retry-After; an error the map does not name stays a 500. And no
route maps an error by hand (``except SomeError: raise Problem(...)``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient

from polysaga.problems import (
    EXCEPTION_HANDLERS,
    PROBLEM_JSON,
    ProblemMap,
    ProblemType,
    domain_problem_handlers,
)

SERVICES = Path(__file__).resolve().parents[2] / "services"


class NotThereError(LookupError):
    pass


class GoneForNowError(Exception):
    pass


class GoneForGoodError(GoneForNowError):
    """Not in the map itself: its base class's problem applies."""


PROBLEMS: ProblemMap = {
    NotThereError: ProblemType(404, "Thing not found", "thing-not-found", detail="no thing {exc}"),
    GoneForNowError: ProblemType(503, "Thing unavailable", retry_after_s=7),
}


@get("/raise/{kind:str}")
async def raising(kind: FromPath[str]) -> str:
    errors: dict[str, Exception] = {
        "missing": NotThereError("t-1"),
        "later": GoneForNowError("its store restarts"),
        "subclass": GoneForGoodError("archived"),
        "other": KeyError("not a domain error"),
    }
    raise errors[kind]


@pytest.fixture
def http() -> TestClient[Litestar]:
    app = Litestar(
        route_handlers=[raising],
        exception_handlers={**EXCEPTION_HANDLERS, **domain_problem_handlers(PROBLEMS)},  # type: ignore[dict-item]
    )
    return TestClient(app)


def test_a_mapped_error_is_its_problem(http: TestClient[Litestar]) -> None:
    with http:
        response = http.get("/raise/missing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "retry-after" not in response.headers
    assert response.json() == {
        "type": "https://polysaga.io/problems/thing-not-found",
        "title": "Thing not found",
        "status": 404,
        "detail": "no thing t-1",
        "instance": "/raise/missing",
    }


def test_a_problem_that_asks_for_a_retry_says_when(http: TestClient[Litestar]) -> None:
    with http:
        response = http.get("/raise/later")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["detail"] == "its store restarts"
    assert response.json()["type"].endswith("/thing-unavailable")


def test_a_subclass_takes_its_base_class_problem(http: TestClient[Litestar]) -> None:
    with http:
        response = http.get("/raise/subclass")
    assert response.status_code == 503
    assert response.json()["detail"] == "archived"


def test_an_error_outside_the_map_is_a_500_that_leaks_nothing(http: TestClient[Litestar]) -> None:
    with http:
        response = http.get("/raise/other")
    assert response.status_code == 500
    assert "not a domain error" not in response.text


def _hand_mapped(tree: ast.AST) -> list[str]:
    """``except E: ... raise Problem(...)``/``raise _helper(...)``: an error mapped by hand."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ExceptHandler) or node.type is None:
            continue
        caught = ast.unparse(node.type)
        if "ValidationError" in caught:  # a parse, not a domain error (see problems.validated)
            found.append(f"line {node.lineno}: except {caught} (use polysaga.problems.validated)")
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Raise) and isinstance(inner.exc, ast.Call):
                found.append(f"line {node.lineno}: except {caught}: raise {ast.unparse(inner.exc)}")
    return found


@pytest.mark.parametrize("module", sorted(SERVICES.glob("*/http.py")), ids=lambda p: p.parent.name)
def test_no_route_maps_a_domain_error_by_hand(module: Path) -> None:
    assert _hand_mapped(ast.parse(module.read_text())) == [], "add it to the service's ProblemMap"


def test_the_hand_mapping_check_finds_one() -> None:
    source = (
        "async def route():\n"
        "    try:\n"
        "        await thing()\n"
        "    except NotThereError as exc:\n"
        "        raise Problem(404, 'Not found', str(exc)) from exc\n"
    )
    assert _hand_mapped(ast.parse(source)) == [
        "line 4: except NotThereError: raise Problem(404, 'Not found', str(exc))"
    ]
