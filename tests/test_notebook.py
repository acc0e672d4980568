"""The evaluation notebook runs end to end on the real index and draws the held-out reliability diagram."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "retrieval_eval.ipynb"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _outputs(nb) -> list:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


@pytest.mark.slow
def test_eval_notebook_runs_and_draws_the_reliability_diagram(tmp_path, monkeypatch):
    # A kernelspec for this very interpreter: a fresh venv or a user-wide "python3" kernel could otherwise run
    # the notebook with another Python that lacks (or has another) faqbot.
    kernels = tmp_path / "jupyter"
    install_kernelspec(kernel_name="faqbot-test", prefix=str(kernels))
    monkeypatch.setenv("JUPYTER_PATH", str(kernels / "share" / "jupyter"))
    figure = tmp_path / "score_distributions.png"
    monkeypatch.setenv("FAQBOT_FIGURE", str(figure))  # leave the committed docs/ figure alone

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # prove the outputs come from this run, not from the committed copy
    client = NotebookClient(nb, timeout=1800, kernel_name="faqbot-test",
                            resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}})
    client.execute()  # raises CellExecutionError on the first failing cell (incl. its own consistency checks)
    nbformat.write(nb, tmp_path / NOTEBOOK.name)

    outputs = _outputs(nb)
    assert not [out for out in outputs if out.output_type == "error"]
    assert figure.read_bytes()[:8] == PNG_MAGIC
    inline = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(inline) == 1, "the figure is shown inline once"
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    for expected in ("split    lang", "held-out ranking by channel", "expected calibration error",
                     "Asserted answers with a wrong first entry", "Covered questions answered 'none'"):
        assert expected in text
