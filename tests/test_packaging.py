"""Packaging cannot drop a runtime file: the wheel carries calibration.json, and faqbot installed from the wheel
into a fresh venv outside the checkout gives the same answer and confidence as the source tree (issue 22).

The fresh venv gets only the wheel; its dependencies come from this venv's site-packages through a .pth line
(offline and fast: nothing is downloaded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from faqbot.calibration import CalibrationError, load_calibration

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How do I install MindSpore with pip?"
PACKAGE = REPO / "src" / "faqbot"
RUNTIME_FILES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
                       if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the source (so the build leaves nothing in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, env=_clean_env(), timeout=300)
    return next(out.glob("faqbot-*.whl"))


@pytest.mark.slow
def test_the_wheel_carries_every_runtime_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "calibration.json" in RUNTIME_FILES
    assert {f"faqbot/{name}" for name in RUNTIME_FILES} <= names


@pytest.mark.slow
def test_an_installed_wheel_answers_with_the_same_confidence_as_the_source_tree(wheel, tmp_path, corpus_dir, real_index_dir):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    with zipfile.ZipFile(wheel) as whl:  # what pip does for a pure-Python wheel: unpack it into site-packages
        whl.extractall(site)
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    run = tmp_path / "elsewhere"  # outside the checkout: nothing found by accident from the cwd
    run.mkdir()
    data = {"FAQBOT_INDEX": str(real_index_dir), "FAQBOT_CORPUS": str(corpus_dir)}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import faqbot; print(faqbot.__file__)"], cwd=run,
                           capture_output=True, text=True, env=_clean_env(), check=True).stdout.strip()
    assert where.startswith(str(site)), where
    code = "import sys; from faqbot.cli import main; sys.exit(main())"
    installed = subprocess.run([str(venv / "bin" / "python"), "-c", code, "ask", "--json", QUESTION], cwd=run,
                               capture_output=True, text=True, env=_clean_env(**data), timeout=600)
    source = subprocess.run([sys.executable, "-m", "faqbot.cli", "ask", "--json", QUESTION], cwd=run,
                            capture_output=True, text=True, env=_clean_env(PYTHONPATH=str(REPO / "src"), **data),
                            timeout=600)
    assert installed.returncode == 0 and source.returncode == 0, installed.stderr + source.stderr
    got, want = json.loads(installed.stdout), json.loads(source.stdout)
    assert (got["confidence"], got["match"], got["answers"][0]["id"]) == \
        (want["confidence"], want["match"], want["answers"][0]["id"])


def test_a_missing_calibration_file_is_an_error_not_a_silent_fallback(tmp_path):
    with pytest.raises(CalibrationError, match="calibrate.py"):
        load_calibration(tmp_path / "calibration.json")


def test_a_retriever_without_its_calibration_file_refuses_to_start(fake_retriever, tmp_path, monkeypatch):
    from faqbot import calibration, search

    monkeypatch.setattr(search, "load_calibration", lambda: calibration.load_calibration(tmp_path / "none.json"))
    with pytest.raises(CalibrationError):
        search.Retriever(fake_retriever.index, fake_retriever.lexical, fake_retriever.embedder)


def test_a_signal_missing_from_a_ranking_is_an_error_not_a_zero(fake_retriever):
    ranking = fake_retriever.rank("How do I install MindSpore?")
    signals = dict(ranking.signals)
    dropped = fake_retriever.calibration.answer.features[0]
    del signals[dropped]
    with pytest.raises(CalibrationError, match=repr(dropped)):
        fake_retriever.calibration.decide(signals)
