"""The notebooks execute top to bottom (nbclient), with their small configurations."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel shows figures inline
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]  # fmt: skip
    assert not errors
    # what a reader comes for is there: tables or text, and the figures
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = " ".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                    for o in outputs)  # fmt: skip
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert images >= 1 and len(text) > 200
    expected = {"01_quickstart": ["Fastest to 95% accuracy", "idle_share"],
                "02_heterogeneity": ["ashl", "bsp"],
                "03_inside_ashl": ["h_shl", "loss_preset"],
                "04_my_cluster": ["samples/s per worker", "Fastest to 95% accuracy"],
                "05_ps_or_allreduce": ["ring all-reduce", "rounds/s", "Fastest to 95% accuracy"],
                }[path.stem]  # fmt: skip
    for words in expected:
        assert words in text, words


def test_there_are_five_notebooks():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart", "02_heterogeneity", "03_inside_ashl", "04_my_cluster",
        "05_ps_or_allreduce"]  # fmt: skip
