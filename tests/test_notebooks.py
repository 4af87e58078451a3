"""Every notebook runs top to bottom on the smoke preset, reading the cache of one smoke reproduce run."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(name: str, folder: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    settings = dict(HARDTHRESH_PRESET="smoke", HARDTHRESH_RESULTS=str(folder / "results"),
                    HARDTHRESH_FIGURES=str(folder / "figures"))
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    return notebook


def images(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", []))


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs_top_to_bottom(smoke_workspace, name, tmp_path):
    folder, _, reproduce = smoke_workspace
    assert reproduce.returncode == 0, reproduce.stderr
    notebook = execute(name, folder)
    assert images(notebook) >= 1
    code = "".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert any(api in code for api in ("from pruning", "from theory", "from analysis.dimension")), \
        f"{name} has no section that uses the library directly"
