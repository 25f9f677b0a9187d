"""Throwaway local servers for the load benchmark and the scale-out tests:
PostgreSQL, Redis, nginx in front of several Rasa and action-server replicas,
and the Rasa-side servers themselves (started through scripts/serve.sh, as
`make run` starts them). Everything listens on 127.0.0.1 and lives in its own
temporary folder, removed on stop.

    from bench.stack import Postgres, Redis, Nginx
    with Postgres() as pg, Redis() as redis:
        ...  # pg.url, redis.port
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVE = ROOT / "scripts" / "serve.sh"
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
    if Path("/usr/lib/postgresql").exists() else None
NGINX_BIN = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
REDIS_BIN = shutil.which("redis-server")

# What a lock that did not hold, or a message Rasa failed on, leaves in a Rasa log.
LOCK_ERROR = re.compile(r"LockError|Could not acquire lock|Traceback \(most recent call last\)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A server in its own process group (stopped with its children), its output in `log`."""
    with log.open("w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 20, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def stop_processes(procs: list[subprocess.Popen], timeout_s: float = 20) -> None:
    """Stop several servers at once: signal them all, then wait for each."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        stop_process(proc, timeout_s)


def wait_http(urls: dict[str, subprocess.Popen], deadline_s: float, log_dir: Path | None = None) -> None:
    """Wait until every URL answers 200, polling them all at once (servers started
    together load their models in parallel). A server that exits fails at once."""
    pending = dict(urls)
    end = time.monotonic() + deadline_s
    while pending:
        for url, proc in list(pending.items()):
            if proc.poll() is not None:
                where = f" (logs in {log_dir})" if log_dir else ""
                raise RuntimeError(f"the server for {url} exited with {proc.returncode}{where}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        del pending[url]
            except (urllib.error.URLError, OSError):
                pass
        if not pending:
            return
        if time.monotonic() > end:
            raise TimeoutError(f"not ready after {deadline_s:.0f} s: {', '.join(pending)}")
        time.sleep(1)


def start_servers(servers: list[tuple[str, int]], env: dict, log_dir: Path, deadline_s: float) -> list[subprocess.Popen]:
    """Rasa-side servers ("rasa" or "actions", port), each a separate process as
    separate pods run, all started at once; returns once every one answers.
    Logs: log_dir/<kind>-<port>.log."""
    procs = [spawn(["bash", str(SERVE), kind, str(port)], env, log_dir / f"{kind}-{port}.log")
             for kind, port in servers]
    probes = {f"http://127.0.0.1:{port}{'/' if kind == 'rasa' else '/health'}": proc
              for (kind, port), proc in zip(servers, procs)}
    try:
        wait_http(probes, deadline_s, log_dir)
    except BaseException:
        for proc in procs:
            stop_process(proc)
        raise
    return procs


def lock_errors(logs: list[Path]) -> dict[str, int]:
    """Lines naming a lock error or starting a traceback, per log file."""
    out = {}
    for log in logs:
        try:
            text = log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        out[log.name] = len(LOCK_ERROR.findall(text))
    return out


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + args


def _shared_tmp(prefix: str) -> Path:
    """A temporary folder another user (postgres, nginx's workers) may enter."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tmp.chmod(0o755)
    return tmp


class _Server:
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class Postgres(_Server):
    """A throwaway PostgreSQL cluster with one database, trust auth, on 127.0.0.1."""

    def __init__(self, port: int | None = None, user: str = "rasa", db: str = "rasa"):
        self.port, self.user, self.db = port or free_port(), user, db
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/{db}"
        self.tmp: Path | None = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if PG_BIN is None:
            raise RuntimeError("PostgreSQL is not installed (make setup installs it)")
        # Not under a private temporary folder: PostgreSQL runs as its own user.
        self.tmp = _shared_tmp("ordos-pg-")
        data = self.tmp / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres")
            shutil.chown(data, "postgres")
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust"]),
                       check=True, capture_output=True, text=True)
        self.proc = subprocess.Popen(
            _as_postgres([str(PG_BIN / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.tmp),
                          "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=400"]),
            stdout=(self.tmp / "pg.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(120):
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: see {self.tmp / 'pg.log'}")
            ready = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise TimeoutError("postgres not ready after 60 s")
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.db],
                       check=True, capture_output=True, text=True)

    def stop(self) -> None:
        stop_process(self.proc, 30, signal.SIGINT)  # fast shutdown: clients still connected are cut off
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Redis(_Server):
    """A throwaway Redis on 127.0.0.1, nothing saved to disk."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.tmp: Path | None = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if REDIS_BIN is None:
            raise RuntimeError("redis-server is not installed (make setup installs it)")
        self.tmp = Path(tempfile.mkdtemp(prefix="ordos-redis-"))
        self.proc = subprocess.Popen([REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.tmp)],
                                     stdout=(self.tmp / "redis.log").open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for _ in range(100):
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: see {self.tmp / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("redis-server not ready after 20 s")

    def stop(self) -> None:
        stop_process(self.proc)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Nginx(_Server):
    """nginx on 127.0.0.1 in front of Rasa replicas and action-server replicas:
    one port per upstream, as a Service per deployment would be.

    `rasa_url` goes into the web app's RASA_URL, `actions_url` into Rasa's
    ACTION_SERVER_URL. Config, pid, logs and temporary files all live in its
    own folder; the access log names the replica that served each request."""

    def __init__(self, rasa_ports: list[int], action_ports: list[int], rasa_port: int | None = None,
                 actions_port: int | None = None):
        if not rasa_ports or not action_ports:
            raise ValueError("nginx needs at least one Rasa and one action server")
        self.rasa_ports, self.action_ports = list(rasa_ports), list(action_ports)
        self.rasa_port, self.actions_port = rasa_port or free_port(), actions_port or free_port()
        self.rasa_url = f"http://127.0.0.1:{self.rasa_port}"
        self.actions_url = f"http://127.0.0.1:{self.actions_port}"
        self.tmp: Path | None = None
        self.proc: subprocess.Popen | None = None

    def config(self, prefix: Path) -> str:
        def servers(ports):
            # A replica that refuses a connection is left alone for 5 s.
            return "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in ports)

        # Retries (proxy_next_upstream) are nginx's default for what is safe: a
        # request that could not be passed on (connection refused or timed out),
        # and an idempotent request (GET: the health probe, a tracker read) that
        # failed. A POST (a message to /webhooks/rest/webhook, an action call to
        # /webhook) that may have reached a replica is never sent to a second one:
        # nginx does not retry non-idempotent requests unless told `non_idempotent`,
        # and it is not told. The sender retries, as the widget does, or not at all.
        proxy = """
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_connect_timeout 2s;
            proxy_send_timeout 30s;
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_next_upstream_timeout 10s;"""
        return f"""# Generated by bench/stack.py: nginx in front of Rasa and action-server replicas, loopback only.
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    log_format upstreams '$remote_addr [$time_local] "$request" $status $request_time '
                         'upstream="$upstream_addr" upstream_status="$upstream_status"';
    access_log {prefix}/access.log upstreams;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server_tokens off;
    # Rasa's bodies are small; the web app already refuses anything over 64 KB.
    client_max_body_size 1m;

    upstream rasa {{
{servers(self.rasa_ports)}
        # Idle connections kept open to the replicas; closed before Rasa closes
        # them (its keep-alive timeout is 120 s) so that a message is never
        # written into a connection the replica is closing.
        keepalive 32;
        keepalive_timeout 60s;
    }}

    upstream actions {{
{servers(self.action_ports)}
        # The action server (Sanic) closes idle connections after 5 s: nginx first.
        keepalive 32;
        keepalive_timeout 4s;
    }}

    server {{
        listen 127.0.0.1:{self.rasa_port};
        location / {{
            proxy_pass http://rasa;{proxy}
        }}
    }}

    server {{
        listen 127.0.0.1:{self.actions_port};
        location / {{
            proxy_pass http://actions;{proxy}
        }}
    }}
}}
"""

    def start(self) -> None:
        if NGINX_BIN is None:
            raise RuntimeError("nginx is not installed (make setup installs nginx-light)")
        self.tmp = _shared_tmp("ordos-nginx-")  # nginx's workers may run as another user
        conf = self.tmp / "nginx.conf"
        conf.write_text(self.config(self.tmp), encoding="utf-8")
        cmd = [NGINX_BIN, "-p", str(self.tmp), "-e", str(self.tmp / "error.log"), "-c", str(conf)]
        checked = subprocess.run(cmd + ["-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused its config: {checked.stderr.strip()}")
        self.proc = subprocess.Popen(cmd + ["-g", "daemon off;"], stdout=(self.tmp / "nginx.out").open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(100):
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: see {self.tmp / 'error.log'}")
            if all(_listening(p) for p in (self.rasa_port, self.actions_port)):
                return
            time.sleep(0.1)
        raise TimeoutError("nginx not listening after 10 s")

    @property
    def access_log(self) -> Path:
        return self.tmp / "access.log"

    def served_by(self) -> Counter:
        """Requests per upstream replica address, from the access log."""
        counts: Counter = Counter()
        try:
            text = self.access_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return counts
        for addresses in re.findall(r'upstream="([^"]*)"', text):
            for addr in addresses.split(","):  # "a, b" when a request went on to a second replica
                if addr.strip() and addr.strip() != "-":
                    counts[addr.strip()] += 1
        return counts

    def stop(self) -> None:
        stop_process(self.proc)  # SIGTERM: nginx's fast shutdown
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
