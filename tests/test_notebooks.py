"""The notebooks run top to bottom (on the smoke preset, in a temporary results folder)."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(name: str, tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    os.environ.update(HARDTHRESH_PRESET="smoke", HARDTHRESH_RESULTS=str(tmp_path / "results"),
                      HARDTHRESH_FIGURES=str(tmp_path / "figures"))
    try:
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for key in ("HARDTHRESH_PRESET", "HARDTHRESH_RESULTS", "HARDTHRESH_FIGURES"):
            os.environ.pop(key, None)
    return notebook


def test_depth_notebook_runs(tmp_path):
    notebook = execute("depth", tmp_path)
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 2
    assert (tmp_path / "results" / "depth.parquet").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["methods", "bounds", "dimension"])
def test_other_notebooks_run(tmp_path, name):
    notebook = execute(name, tmp_path)
    assert any("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code"
               for o in c.get("outputs", []))
