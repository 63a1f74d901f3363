"""The domain layer stays pure: no gRPC, Kafka, SQLAlchemy or generated protobuf code in it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "metrofed" / "domain"
FORBIDDEN = ("grpc", "kafka", "sqlalchemy", "alembic", "google.protobuf", "metrofed.v1", "opentelemetry",
             "metrofed.bus", "metrofed.db")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_module_imports_no_adapter(path):
    bad = {m for m in imported_modules(path) if m.startswith(FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_check_sees_imports():
    assert "grpc" in imported_modules(Path(__file__).resolve().parents[2] / "metrofed" / "grpc_server.py")
