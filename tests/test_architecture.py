"""The layering of the package: the numeric core imports no orchestration or tracking code,
and each core layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mrirecon"

#: Core layers, lowest first; a module may import its own layer and the ones before it.
LAYERS = ["seeding", "grid", "data", "mri", "config", "models", "evaluation", "stages"]
#: Never imported by the core: orchestration, tracking, versioning and the layers above it.
FORBIDDEN = ("prefect", "prefect_dask", "mlflow", "dvc", "flows", "tasks", "mrirecon.ops", "mrirecon.cli")


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "mrirecon" and len(parts) > 1 and parts[1] in LAYERS else None


def _core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if _layer(_module_name(p)))


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = _module_name(path).split(".")[: -node.level]
                found.add(".".join([*base, node.module] if node.module else base))
            else:
                found.add(node.module or "")
    return found


def test_the_core_is_found():
    names = {_module_name(p) for p in _core_modules()}
    assert {"mrirecon.mri.fft", "mrirecon.data.volumes", "mrirecon.config", "mrirecon.stages.ingest"} <= names


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: _module_name(p))
def test_core_imports_no_orchestration_and_only_lower_layers(path):
    own = LAYERS.index(_layer(_module_name(path)))
    for imported in _imports(path):
        assert not any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN), (
            f"{path.relative_to(PACKAGE.parent)} imports {imported}: the numeric core must not know "
            "Prefect, MLflow, DVC, flows, tasks or mrirecon.ops"
        )
        layer = _layer(imported)
        if layer is not None:
            assert LAYERS.index(layer) <= own, (
                f"{path.relative_to(PACKAGE.parent)} ({LAYERS[own]}) imports {imported} from the higher "
                f"layer {layer}; layers import only downward: {' < '.join(LAYERS)}"
            )


def test_forbidden_import_is_caught(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom prefect import flow\nfrom mrirecon.ops import tracking\n")
    assert {"os", "prefect", "mrirecon.ops"} <= _imports(bad)
