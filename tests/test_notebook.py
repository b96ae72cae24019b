"""notebooks/quickstart.ipynb runs top to bottom as CI runs it: tiny, no network (the trained stand-in of
../shared/weights when it is there, else random weights); the TensorBoard cell is tagged skip-execution."""

import nbformat
import pytest
from conftest import REPO
from nbclient import NotebookClient
from PIL import Image

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


@pytest.mark.slow
def test_the_quickstart_notebook_runs_and_shows_its_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLELAB_QUICK", "1")
    monkeypatch.setenv("STYLELAB_NOTEBOOK_OUT", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.output_type == "error"]
    # the picture, the loss curves and the contact sheet, inline
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 3
    skipped = [cell for cell in notebook.cells if "skip-execution" in cell.metadata.get("tags", [])]
    assert len(skipped) == 1 and "%tensorboard" in skipped[0].source and not skipped[0].get("outputs")
    jobs = [p for p in (tmp_path / "sweep").iterdir() if (p / "final.png").is_file()]
    assert len(jobs) == 3
    with Image.open(tmp_path / "sweep" / "contact_sheet.png") as sheet:
        assert sheet.width > 3 * 96
