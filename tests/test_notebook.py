"""notebooks/explore.ipynb runs top to bottom, headless, on tiny settings, and is stored clean."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
KERNEL = "behavior-test-venv"


def _kernel_manager(tmp_path: Path, work: Path):
    """A kernel that runs this interpreter (the venv's), not whichever `python` the PATH finds, with the
    notebook's quick settings in its environment."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "behavior (test)",
                "language": "python",
                "env": {
                    "BEHAVIOR_NOTEBOOK_QUICK": "1",
                    "BEHAVIOR_NOTEBOOK_WORK": str(work),
                    "MPLBACKEND": "Agg",
                },
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def test_notebook_is_stored_without_outputs_or_machine_paths():
    text = NOTEBOOK.read_text()
    notebook = nbformat.reads(text, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, (
            f"clear the outputs of: {cell.source[:60]!r}"
        )
    for fragment in ("/work/", "/tmp/", "/home/", "/Users/", "C:\\\\"):
        assert fragment not in text, f"the notebook names a path of one machine ({fragment})"
    first = code[0].source
    for setting in ("DATA = None", "CHECKPOINT = None", "BEHAVIOR_NOTEBOOK_QUICK"):
        assert setting in first, f"the settings cell lacks {setting}"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    work = tmp_path / "work"
    client = NotebookClient(
        notebook, km=_kernel_manager(tmp_path, work), timeout=150, resources={"metadata": {"path": str(ROOT)}}
    )
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, when any cell fails
    seconds = time.perf_counter() - started
    errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors
    for name in (
        "sampled_frames.png",
        "run/best.pt",
        "run/curves.png",
        "eval-test/confusion_matrix.png",
        "attention-right.png",
        "temporal-right.png",
        "gallery.html",
    ):
        assert (work / name).is_file(), f"the notebook did not write {name}"
    assert "Misclassified videos" in (work / "gallery.html").read_text()
    assert seconds < 180, f"the quick notebook took {seconds:.0f} s; keep it under 3 minutes"
