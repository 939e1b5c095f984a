"""Shared fixtures: a live `vitascope serve` on loopback, driven by the real `openai` client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest

from vitascope.jobs.webhooks import new_secret

TEST_ENV = {
    "VITASCOPE_TEST_MODELS": "1",
    "VITASCOPE_DEFAULT_MODEL": "vitascope-world-tiny",
    "VITASCOPE_POLL_AFTER_MS": "100",
    "HF_HUB_OFFLINE": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(home: Path, *args: str, extra_env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **TEST_ENV, "VITASCOPE_HOME": str(home), **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "vitascope", *args], env=env, capture_output=True, text=True, check=check, timeout=600)


class Server:
    """A `vitascope serve` process; start() and kill() may be called again (crash tests)."""

    def __init__(self, home: Path, extra_env: dict | None = None):
        self.home, self.port, self.extra_env = home, free_port(), extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        env = {**os.environ, **TEST_ENV, "VITASCOPE_HOME": str(self.home), **self.extra_env}
        log = open(self.home / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "vitascope", "serve", "--port", str(self.port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + (self.home / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class WebhookReceiver:
    """Collects POSTed webhook events; fails the first `fail_first` deliveries to exercise retries."""

    def __init__(self, fail_first: int = 1):
        self.events: list[tuple[dict, bytes]] = []
        self.attempts = 0
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def for_video(self, vid: str) -> list[dict]:
        return [json.loads(b) for _, b in self.events if json.loads(b)["data"]["id"] == vid]


@pytest.fixture(scope="session")
def webhook():
    r = WebhookReceiver()
    yield r
    r.httpd.shutdown()


@pytest.fixture(scope="session")
def webhook_secret():
    return new_secret()


@pytest.fixture(scope="session")
def server(tmp_path_factory, webhook, webhook_secret):
    home = tmp_path_factory.mktemp("vshome")
    s = Server(home, {"VITASCOPE_WEBHOOK_URL": webhook.url, "VITASCOPE_WEBHOOK_SECRET": webhook_secret, "VITASCOPE_WEBHOOK_BACKOFF_S": "0.2", "VITASCOPE_WORKERS": "2", "VITASCOPE_MAX_IMAGE_PIXELS": "4000000", "VITASCOPE_MAX_UPLOAD_BYTES": "8000000"})
    s.start()
    yield s
    s.stop()


def make_client(server: Server, owner: str) -> openai.OpenAI:
    key = cli(server.home, "keys", "create", "--name", owner).stdout.strip().splitlines()[-1]
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def client(server) -> openai.OpenAI:
    return make_client(server, "alice")


@pytest.fixture(scope="session")
def other_client(server) -> openai.OpenAI:
    return make_client(server, "bob")


@pytest.fixture(scope="session")
def done_video(client):
    """A completed 4 s landscape clip, shared by the tests that need a source."""
    return client.videos.create_and_poll(prompt="two red balls bouncing on green grass at sunset", seconds="4", size="1280x720", extra_body={"seed": 7})
