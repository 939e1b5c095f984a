"""kill -9 the server while jobs run; after a restart every accepted job completes."""

from __future__ import annotations

import time

import openai

from conftest import Server, cli


def test_kill_9_while_jobs_run_then_every_job_completes(tmp_path):
    srv = Server(tmp_path, {"VITASCOPE_WORKERS": "1", "VITASCOPE_STALE_AFTER_S": "600"})
    srv.start()
    key = cli(tmp_path, "keys", "create", "--name", "crash").stdout.strip().splitlines()[-1]
    c = openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=60)
    try:
        ids = [c.videos.create(prompt=f"a red ball bouncing, take {i}", seconds="8", size="1280x720").id for i in range(4)]
        deadline = time.time() + 120
        while time.time() < deadline and not any(c.videos.retrieve(i).status == "in_progress" for i in ids):
            time.sleep(0.05)
        states = {i: c.videos.retrieve(i).status for i in ids}
        assert "in_progress" in states.values(), states
        assert "queued" in states.values(), states  # the kill lands with work both running and waiting
        srv.kill()
        srv.start()  # the dead worker's pid is gone: its job is re-queued at once, not after stale_after_s
        done = [c.videos.poll(i, poll_interval_ms=100) for i in ids]
        assert [d.status for d in done] == ["completed"] * 4
        for d in done:
            assert len(c.videos.download_content(d.id).content) > 1000
    finally:
        srv.stop()
