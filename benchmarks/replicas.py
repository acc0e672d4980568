#!/usr/bin/env python
"""Two faqbot replicas behind nginx, sharing one PostgreSQL feedback database, under load; one is SIGKILLed.

    python benchmarks/replicas.py                    # 30 s per throughput phase, 60 s kill phase (~3 minutes)
    python benchmarks/replicas.py --seconds 10 --kill-seconds 20 --json

Everything runs on 127.0.0.1 from Debian's packages (`apt-get install postgresql nginx`): a throw-away
PostgreSQL cluster (tests/test_feedback_backends.PgCluster), two `python app.py` replicas with
FAQBOT_FEEDBACK_DB=postgresql://..., and nginx with deploy/faqbot.conf.template, in the foreground with its
config, pid file, logs and temp files in a temporary folder. Printed: /api/search throughput at 16 clients with
1 and with 2 replicas, then a mixed load (searches and votes) during which one replica is killed: errors, votes
acknowledged and landed, and the time from the kill to the next successful answer. tests/test_replicas.py runs
the same scenario, shorter, and asserts what must hold (nothing about speed).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "deploy" / "faqbot.conf.template"
# the dev set's questions as users type them (not the long pasted logs of devset_hard_a), so every phase of a run
# gets the same mix of question lengths, and the model's cost per question stays comparable between phases
DEVSETS = [REPO / "tests" / "data" / "devset.jsonl"]
REPLICA_HEADER = "X-Faqbot-Replica"
REQUEST_TIMEOUT = 30.0
ITEM_ID = "master/mindspore/installation/46780083"  # the vote's item: any id works, the store does not check it


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def questions() -> list[str]:
    """Distinct questions users asked (the dev set), so the answer cache does not flatter throughput; in a fixed
    shuffled order, so zh and en, short and long, are mixed the same way in every phase."""
    seen: dict[str, None] = {}
    for path in DEVSETS:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    seen.setdefault(json.loads(line)["q"], None)
    pool = list(seen)
    random.Random(13).shuffle(pool)
    return pool


# ---------------------------------------------------------------- the pieces


class Replica:
    """One `python app.py` process on 127.0.0.1; its log in `folder`."""

    def __init__(self, name: str, folder: Path, db_url: str, python: str = sys.executable):
        self.name, self.port = name, free_port()
        self.log_path = folder / f"{name}.log"
        env = dict(os.environ)  # FAQBOT_INDEX, FAQBOT_MODEL, ... as set for the caller
        env.update(FAQBOT_FEEDBACK_DB=db_url, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
                   HOME=str(folder / f"{name}-home"),
                   FAQBOT_VOTE_RATE="0")  # every load client comes through one nginx on 127.0.0.1: no per-client limit
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([python, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                                     cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {self.name} not healthy after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.3)

    def rss_mb(self) -> float | None:
        """Resident memory of the replica (Linux /proc), in MB."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return None

    def tail(self, n: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def kill(self) -> tuple[float, float]:
        """SIGKILL: no shutdown, no flush; what was only in its memory is gone. Returns when the signal was sent
        and when the process was gone: in between the kernel tears it down (its memory first, its sockets last),
        and may still accept connections for it that then fail."""
        sent = time.monotonic()
        self.proc.kill()
        self.proc.wait(10)
        return sent, time.monotonic()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def render_site(upstreams: list[str], listen: str) -> str:
    """deploy/faqbot.conf.template filled in as the official nginx image would from its environment."""
    servers = " ".join(f"server {address} max_fails=3 fail_timeout=5s;" for address in upstreams)
    return TEMPLATE.read_text(encoding="utf-8").replace("${FAQBOT_UPSTREAM_SERVERS}", servers).replace(
        "${NGINX_PORT}", listen)


class Nginx:
    """nginx in the foreground (`-g 'daemon off;'`) with config, pid file, logs and temp files in `folder`."""

    def __init__(self, folder: Path, upstreams: list[str], binary: str):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        self.port = free_port()
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / sub).mkdir(exist_ok=True)
            (folder / sub).chmod(0o777)  # workers may run as an unprivileged user
        (folder / "faqbot.conf").write_text(render_site(upstreams, f"127.0.0.1:{self.port}"), encoding="utf-8")
        (folder / "nginx.conf").write_text(f"""\
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/faqbot.conf;
    access_log {folder}/access.log faqbot;  # after the include, which defines the format
}}
""", encoding="utf-8")
        check = subprocess.run([binary, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf")],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refuses the generated config:\n{check.stderr}")
        self._err = (folder / "stderr.log").open("w")
        self.proc = subprocess.Popen([binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
                                     stdout=self._err, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{(folder / 'error.log').read_text(errors='replace')}")
            time.sleep(0.1)

    def access_log(self) -> list[str]:
        path = self.folder / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def error_log(self) -> list[str]:
        path = self.folder / "error.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._err.close()


# ---------------------------------------------------------------- load


@dataclass
class Call:
    kind: str  # "search" | "vote"
    start: float
    end: float
    status: int  # 0: no HTTP response at all
    replica: str | None
    session: str | None = None  # a vote's unique id, stored in the feedback row's session column
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 202 if self.kind == "vote" else self.status == 200


@dataclass
class LoadResult:
    calls: list[Call] = field(default_factory=list)
    seconds: float = 0.0
    kill_at: float | None = None  # SIGKILL sent
    kill_done: float | None = None  # the process gone (its sockets closed)

    def in_flight_at_kill(self, call: Call) -> bool:
        """Sent before the killed process was gone, and not answered before the signal."""
        return call.start <= self.kill_done and call.end >= self.kill_at

    def ok(self, kind: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.ok and (kind is None or c.kind == kind)]

    def errors(self) -> list[Call]:
        return [c for c in self.calls if not c.ok]

    def throughput(self, kind: str = "search") -> float:
        return len(self.ok(kind)) / self.seconds if self.seconds else 0.0


def run_load(port: int, *, clients: int = 16, seconds: float = 20.0, vote_every: int = 0,
             kill: tuple[float, callable] | None = None) -> LoadResult:
    """`clients` threads, each on its own keep-alive connection to 127.0.0.1:port, for `seconds`: GET /api/search on
    distinct questions, and every `vote_every`-th request a POST /api/feedback with a unique session id. With
    `kill=(after_seconds, fn)`, fn() is called that far into the run and returns (signal sent, process gone)."""
    pool = questions()
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(10**9))
    start = time.monotonic()
    stop_at = start + seconds

    def next_question() -> str:
        with lock:
            n = next(counter)
        q = pool[n % len(pool)]
        return q if n < len(pool) else f"{q} ({n // len(pool)})"  # still distinct on later rounds: no cache hits

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        sent = 0
        while time.monotonic() < stop_at:
            sent += 1
            question = next_question()
            session = None
            if vote_every and sent % vote_every == 0:
                session = uuid.uuid4().hex
                kind, method, path = "vote", "POST", "/api/feedback"
                body = json.dumps({"question": question, "item_id": ITEM_ID, "vote": "like" if sent % 2 else "dislike",
                                   "lang": "en", "session": session}).encode()
                headers = {"Content-Type": "application/json"}
            else:
                kind, method, body, headers = "search", "GET", None, {}
                path = "/api/search?" + urllib.parse.urlencode({"q": question, "k": 3})
            t0 = time.monotonic()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                call = Call(kind, t0, time.monotonic(), resp.status, resp.getheader(REPLICA_HEADER), session)
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                call = Call(kind, t0, time.monotonic(), 0, None, session, error=f"{type(e).__name__}: {e}")
            with lock:
                result.calls.append(call)
            if not call.ok:
                time.sleep(0.05)  # a client backs off a little after an error, rather than spinning
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    if kill is not None:
        time.sleep(max(0.0, start + kill[0] - time.monotonic()))
        result.kill_at, result.kill_done = kill[1]()
    for t in threads:
        t.join(seconds + REQUEST_TIMEOUT + 5)
    result.seconds = time.monotonic() - start
    return result


def votes_in_db(db_url: str) -> set[str]:
    import psycopg

    with psycopg.connect(db_url, connect_timeout=5) as conn:
        return {s for (s,) in conn.execute("SELECT session FROM feedback WHERE kind = 'vote' AND session IS NOT NULL")}


# ---------------------------------------------------------------- the scenario


@dataclass
class Cluster:
    """PostgreSQL URL, two replicas, nginx over the first alone and nginx over both."""

    db_url: str
    a: Replica
    b: Replica
    single: Nginx
    pair: Nginx


@contextlib.contextmanager
def cluster(db_url: str, folder: Path):
    """Start both replicas (in parallel: each loads the model) and both nginx; stop everything on exit."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx not found: apt-get install -y nginx")
    started: list = []
    try:
        a = Replica("a", folder, db_url)
        started.append(a)
        b = Replica("b", folder, db_url)
        started.append(b)
        a.wait_ready()
        b.wait_ready()
        single = Nginx(folder / "nginx-single", [a.address], binary)
        started.append(single)
        pair = Nginx(folder / "nginx-pair", [a.address, b.address], binary)
        started.append(pair)
        yield Cluster(db_url, a, b, single, pair)
    finally:
        for thing in reversed(started):
            with contextlib.suppress(Exception):
                thing.stop()


def warm_up(c: Cluster, seconds: float = 3.0) -> None:
    run_load(c.pair.port, clients=4, seconds=seconds)


def kill_scenario(c: Cluster, *, seconds: float, kill_after: float, clients: int = 16, vote_every: int = 3) -> dict:
    """Mixed searches and votes through nginx over both replicas; replica b is SIGKILLed `kill_after` s in."""
    result = run_load(c.pair.port, clients=clients, seconds=seconds, vote_every=vote_every,
                      kill=(kill_after, c.b.kill))
    kill_at, kill_done = result.kill_at, result.kill_done
    landed = votes_in_db(c.db_url)
    acked = result.ok("vote")
    ids = {str(c.a.proc.pid): "a", str(c.b.proc.pid): "b"}
    by_replica = {"a": 0, "b": 0}
    for call in acked:
        name = ids.get((call.replica or "").rsplit("-", 1)[-1])
        if name:
            by_replica[name] += 1
    after = sorted((call for call in result.ok() if call.start > kill_done), key=lambda call: call.end)
    errors = result.errors()
    return {
        "seconds": round(result.seconds, 1),
        "clients": clients,
        "kill_after_s": kill_after,
        "requests": len(result.calls),
        "searches_ok": len(result.ok("search")),
        "votes_sent": sum(call.kind == "vote" for call in result.calls),
        "votes_acknowledged": len(acked),
        "votes_acknowledged_by_replica": by_replica,
        "votes_acknowledged_lost": len({call.session for call in acked} - landed),
        "votes_landed_total": len(landed),
        "errors": len(errors),
        "errors_by_kind": {k: sum(call.kind == k for call in errors) for k in ("search", "vote")},
        "errors_in_flight_at_kill": sum(result.in_flight_at_kill(call) for call in errors),
        "kill_teardown_ms": round((kill_done - kill_at) * 1000, 1),
        "error_examples": sorted({call.error or f"HTTP {call.status}" for call in errors})[:5],
        # the first request sent after the killed replica was gone, answered (by the survivor): kill -> answer
        "survivor_first_answer_after_kill_ms": round((after[0].end - kill_at) * 1000, 1) if after else None,
        "survivor_p50_after_kill_ms": _pct([call.end - call.start for call in after], 50),
        # answers keep coming: the first completed after the kill, and the longest pause between two completed
        # answers in the 5 s after the kill, beside the same measure for the 5 s before it
        "first_answer_completed_after_kill_ms": next(
            (round((call.end - kill_at) * 1000, 1) for call in sorted(result.ok(), key=lambda c: c.end)
             if call.end > kill_at), None),
        "longest_pause_between_answers_after_kill_ms": _longest_pause(result, kill_at, kill_at + 5),
        "longest_pause_between_answers_before_kill_ms": _longest_pause(result, kill_at - 5, kill_at),
        "nginx_error_log": [line.split("] ", 1)[-1][:300] for line in c.pair.error_log()[-6:]],
        "answers_after_kill_by": sorted({ids.get((call.replica or "").rsplit("-", 1)[-1], "?")
                                         for call in after if call.kind == "vote"}),
        "_result": result,
    }


def throughput_phase(c: Cluster, *, seconds: float, clients: int = 16) -> dict:
    """/api/search only, distinct questions, through nginx over one replica, then over both."""
    out = {}
    for label, front in (("1_replica", c.single), ("2_replicas", c.pair)):
        r = run_load(front.port, clients=clients, seconds=seconds)
        replicas = sorted({call.replica for call in r.ok()} - {None})
        out[label] = {"req_per_s": round(r.throughput("search"), 1), "ok": len(r.ok()), "errors": len(r.errors()),
                      "replicas_answering": len(replicas),
                      "p50_ms": _pct([call.end - call.start for call in r.ok()], 50),
                      "p99_ms": _pct([call.end - call.start for call in r.ok()], 99)}
    out["rss_mb"] = {"a": c.a.rss_mb(), "b": c.b.rss_mb()}
    return out


def _longest_pause(result: LoadResult, start: float, end: float) -> float | None:
    """The longest time in [start, end] during which no request was answered successfully, in ms."""
    ends = sorted(call.end for call in result.ok() if start <= call.end <= end)
    if not ends:
        return None
    marks = [start, *ends, end]
    return round(max(b - a for a, b in zip(marks, marks[1:])) * 1000, 1)


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p / 100))] * 1000, 1)


def print_report(report: dict) -> None:
    t = report["throughput"]
    k = report["kill"]
    if "load_average_1m" in report:
        print(f"machine: {report['cpus']} CPUs, 1-minute load average {report['load_average_1m']} at the end "
              "(other processes included)")
    print(f"/api/search, {report['clients']} clients, distinct questions, {report['seconds']:.0f} s per phase, through nginx:")
    for label in ("1_replica", "2_replicas"):
        row = t[label]
        print(f"  {label.replace('_', ' '):<11} {row['req_per_s']:>7.1f} req/s   p50 {row['p50_ms']} ms   "
              f"p99 {row['p99_ms']} ms   errors {row['errors']}   replicas answering {row['replicas_answering']}")
    print(f"  memory per replica after the load (RSS): a {t['rss_mb']['a']} MB, b {t['rss_mb']['b']} MB")
    print(f"SIGKILL of one replica {k['kill_after_s']:.0f} s into {k['seconds']:.0f} s of searches + votes "
          f"({k['clients']} clients):")
    print(f"  requests {k['requests']}, searches answered {k['searches_ok']}")
    print(f"  votes sent {k['votes_sent']}, acknowledged (202) {k['votes_acknowledged']} "
          f"(replica a {k['votes_acknowledged_by_replica']['a']}, b {k['votes_acknowledged_by_replica']['b']}), "
          f"acknowledged but missing from the database {k['votes_acknowledged_lost']}")
    print(f"  errors {k['errors']} (searches {k['errors_by_kind']['search']}, votes {k['errors_by_kind']['vote']}), "
          f"of them in flight at the kill {k['errors_in_flight_at_kill']}")
    print(f"  the killed process took {k['kill_teardown_ms']} ms to go; answers kept coming: the first completed "
          f"{k['first_answer_completed_after_kill_ms']} ms after the SIGKILL, longest pause between answers "
          f"{k['longest_pause_between_answers_after_kill_ms']} ms in the 5 s after it "
          f"({k['longest_pause_between_answers_before_kill_ms']} ms in the 5 s before)")
    print(f"  the first request sent after the kill was answered {k['survivor_first_answer_after_kill_ms']} ms after "
          f"the SIGKILL (p50 latency after the kill {k['survivor_p50_after_kill_ms']} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each throughput phase")
    parser.add_argument("--kill-seconds", type=float, default=60.0, help="length of the kill phase")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO / "tests"))
    from test_feedback_backends import PgCluster, _pg_bin  # the same throw-away cluster the tests use

    bindir = _pg_bin()
    if bindir is None or nginx_binary() is None:
        print("replicas.py: needs Debian's postgresql and nginx: apt-get install -y postgresql nginx", file=sys.stderr)
        return 2
    pg = PgCluster(bindir)
    folder = Path(tempfile.mkdtemp(prefix="faqbot-replicas-"))
    folder.chmod(0o755)
    try:
        db_url = pg.new_database()
        log("starting PostgreSQL, two replicas and nginx ...")
        with cluster(db_url, folder) as c:
            warm_up(c)
            log(f"throughput: {args.seconds:.0f} s with 1 replica, then {args.seconds:.0f} s with 2 ...")
            throughput = throughput_phase(c, seconds=args.seconds, clients=args.clients)
            log(f"kill phase: {args.kill_seconds:.0f} s, replica b killed at {args.kill_seconds / 3:.0f} s ...")
            kill = kill_scenario(c, seconds=args.kill_seconds, kill_after=args.kill_seconds / 3, clients=args.clients)
        kill.pop("_result")
        report = {"clients": args.clients, "seconds": args.seconds, "throughput": throughput, "kill": kill,
                  "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_report(report)
    finally:
        pg.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
