"""The test command works on a fresh machine (issue 9, finding 12): scripts/test.sh installs the system packages
the tests need, the venv and the extras, then runs pytest and returns its exit code; the README and .ci/run use
exactly it. apt-get, dpkg-query, id and python3 are replaced by stubs that log what they were asked to do."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STUBS = {
    # every package reported missing except python3
    "dpkg-query": 'pkg="${@: -1}"; [ "$pkg" = python3 ] && printf "install ok installed" || exit 1',
    "id": 'echo "${FAKE_UID:-0}"',
    "apt-get": 'echo "apt-get $*" >> "$LOG"',
    "python3": """if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf 'export PATH="%s/bin:$PATH"\\n' "$(cd "$3" && pwd)" > "$3/bin/activate"
  printf '#!/usr/bin/env bash\\necho "pip $*" >> "$LOG"\\n' > "$3/bin/pip"
  printf '#!/usr/bin/env bash\\necho "python $* GRADIO_ANALYTICS_ENABLED=$GRADIO_ANALYTICS_ENABLED HF_HUB_OFFLINE=$HF_HUB_OFFLINE FAQBOT_CORPUS=$FAQBOT_CORPUS" >> "$LOG"\\nexit "${PYTEST_EXIT:-0}"\\n' > "$3/bin/python"
  chmod +x "$3/bin/pip" "$3/bin/python"
  echo "venv $3" >> "$LOG"
fi""",
}


def _fresh_checkout(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the scripts (no .venv), the corpus's two folders next to it (../shared/corpus, as in CI) and a
    PATH whose system tools are the stubs above."""
    for version in ("mindspore-master", "mindspore-r1.1"):
        (tmp_path / "shared" / "corpus" / version).mkdir(parents=True)
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / ".ci").mkdir()
    shutil.copy2(REPO / "scripts" / "test.sh", repo / "scripts" / "test.sh")
    shutil.copy2(REPO / ".ci" / "run", repo / ".ci" / "run")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text("#!/usr/bin/env bash\n" + body + "\n")
        (stubs / name).chmod(stat.S_IRWXU)
    log = tmp_path / "log.txt"
    log.touch()
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "LOG": str(log), "HOME": str(tmp_path)}
    return repo, env


def _run(cmd: list[str], repo: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=60)


def test_fresh_root_machine_gets_packages_venv_extras_then_pytest_with_its_exit_code(tmp_path):
    repo, env = _fresh_checkout(tmp_path)
    proc = _run(["bash", "scripts/test.sh", "-m", "not slow"], repo, {**env, "PYTEST_EXIT": "3"})
    assert proc.returncode == 3, proc.stderr
    log = Path(env["LOG"]).read_text().splitlines()
    assert log[0] == "apt-get update -qq"
    assert log[1].startswith("apt-get install -y")
    installed = set(log[1].split())
    assert {"chromium", "fonts-wqy-microhei", "python3-venv", "postgresql", "nginx"} <= installed
    assert "python3" not in installed  # already there
    assert log[2:] == ["venv .venv", "pip install -q -e .[st,test]",
                       "python -m pytest -q -m not slow GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 "
                       f"FAQBOT_CORPUS={tmp_path / 'shared' / 'corpus'}"]


def test_not_root_with_packages_missing_names_them_and_installs_nothing(tmp_path):
    repo, env = _fresh_checkout(tmp_path)
    proc = _run(["bash", "scripts/test.sh"], repo, {**env, "FAKE_UID": "1000"})
    assert proc.returncode == 1
    assert "missing system packages" in proc.stderr and "chromium" in proc.stderr
    assert Path(env["LOG"]).read_text() == ""


def test_no_corpus_names_the_setting_and_runs_nothing(tmp_path):
    repo, env = _fresh_checkout(tmp_path)
    shutil.rmtree(tmp_path / "shared")
    for cmd, extra in ((["bash", "scripts/test.sh"], {}), (["bash", ".ci/run"], {}),
                       (["bash", "scripts/test.sh"], {"FAQBOT_CORPUS": str(tmp_path / "nowhere")})):
        proc = _run(cmd, repo, {**env, **extra})
        assert proc.returncode == 1 and "FAQBOT_CORPUS" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert Path(env["LOG"]).read_text() == ""


def test_the_corpus_given_is_passed_on_as_an_absolute_path(tmp_path):
    repo, env = _fresh_checkout(tmp_path)
    mine = tmp_path / "mine"
    shutil.copytree(tmp_path / "shared" / "corpus", mine)
    assert _run(["bash", ".ci/run"], repo, {**env, "FAQBOT_CORPUS": "../mine"}).returncode == 0
    assert Path(env["LOG"]).read_text().splitlines()[-1].endswith(f"FAQBOT_CORPUS={mine}")


def test_ci_runs_the_script_and_fails_when_pytest_fails(tmp_path):
    repo, env = _fresh_checkout(tmp_path)
    assert _run(["bash", ".ci/run"], repo, {**env, "PYTEST_EXIT": "1"}).returncode == 1
    assert _run(["bash", ".ci/run"], repo, {**env, "PYTEST_EXIT": "0"}).returncode == 0


def test_readme_and_ci_use_the_same_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Install and run the tests"):]
    command = re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()
    assert command == "bash scripts/test.sh"
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert command in ci
    assert "set -euo pipefail" in ci
    assert os.access(REPO / "scripts" / "test.sh", os.X_OK)
