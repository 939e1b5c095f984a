"""Webhook events, signed as Standard Webhooks (what `openai.webhooks.unwrap` verifies).

Events are rows in the database written in the same transaction that ends the job, so an event
is never lost; a delivery thread POSTs them and retries with exponential backoff.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time

import httpx
from sqlalchemy import select

from vitascope.store.db import Database, WebhookDelivery

log = logging.getLogger(__name__)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def event(video_id: str, event_type: str) -> WebhookDelivery:
    evt_id = "evt_" + secrets.token_hex(12)
    payload = {"id": evt_id, "object": "event", "created_at": int(time.time()), "type": event_type, "data": {"id": video_id}}
    return WebhookDelivery(id=evt_id, video_id=video_id, event_type=event_type, payload=payload)


class Deliverer:
    def __init__(self, db: Database, url: str | None, secret: str | None, *, max_attempts: int, backoff_s: float):
        self.db, self.url, self.secret = db, url, secret
        self.max_attempts, self.backoff_s = max_attempts, backoff_s
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.url:
            self._thread = threading.Thread(target=self._loop, name="vitascope-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    sent = self.deliver_due(client)
                except Exception:  # the loop outlives any one bad delivery or a busy database
                    log.exception("webhook delivery pass failed")
                    sent = 0
                if not sent:
                    self.wake.wait(0.5)
                    self.wake.clear()

    def deliver_due(self, client: httpx.Client) -> int:
        with self.db.session() as s:
            due = s.scalars(
                select(WebhookDelivery).where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= time.time()).limit(20)
            ).all()
        for d in due:
            body = json.dumps(d.payload, separators=(",", ":"))
            ts = int(time.time())
            headers = {"content-type": "application/json", "webhook-id": d.id, "webhook-timestamp": str(ts)}
            if self.secret:
                headers["webhook-signature"] = sign(self.secret, d.id, ts, body)
            error = None
            try:
                r = client.post(self.url, content=body, headers=headers)
                if r.status_code >= 300:
                    error = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            with self.db.session.begin() as s:
                row = s.get(WebhookDelivery, d.id)
                row.attempts += 1
                if error is None:
                    row.status = "delivered"
                else:
                    row.last_error = error
                    row.next_attempt_at = time.time() + self.backoff_s * 2 ** (row.attempts - 1)
                    if row.attempts >= self.max_attempts:
                        row.status = "failed"
        return len(due)
