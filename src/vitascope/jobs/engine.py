"""The durable job engine: jobs are rows of `videos`; workers claim them atomically and run them.

A job is never lost: it is written before the API answers; a worker claims it with a conditional
UPDATE (only one wins); while it runs, a heartbeat keeps `heartbeat_at` fresh; on start, and then
periodically, jobs whose worker died (its process is gone, or its heartbeat went silent) go back
to the queue. Deleting a video marks it; the running job sees the mark at its next progress report
and stops.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import select, update

from vitascope import media
from vitascope.jobs import webhooks
from vitascope.models.base import Cancelled, GenerationRequest, ModelError, Registry
from vitascope.settings import Settings
from vitascope.store.blobs import BlobStore
from vitascope.store.db import Database, Video, now

log = logging.getLogger(__name__)

VARIANTS = {"video": ("video.mp4", "video/mp4"), "thumbnail": ("thumbnail.webp", "image/webp"), "spritesheet": ("spritesheet.jpg", "image/jpeg")}


def blob_key(video_id: str, variant: str) -> str:
    return f"videos/{video_id}/{VARIANTS[variant][0]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Engine:
    def __init__(self, settings: Settings, db: Database, blobs: BlobStore, registry: Registry):
        self.settings, self.db, self.blobs, self.registry = settings, db, blobs, registry
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self.deliverer = webhooks.Deliverer(
            db, settings.webhook_url, settings.webhook_secret, max_attempts=settings.webhook_max_attempts, backoff_s=settings.webhook_backoff_s
        )

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"vitascope-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._heartbeat, name="vitascope-heartbeat", daemon=True)
        t.start()
        self._threads.append(t)
        self.deliverer.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        self.deliverer.stop()
        for t in self._threads:
            t.join(timeout=2)

    def notify(self) -> None:
        self.wake.set()

    def recover(self) -> int:
        """Re-queue jobs whose worker is gone: a dead process on this host, or a silent heartbeat."""
        host = socket.gethostname()
        requeue = []
        with self.db.session() as s:
            for v in s.scalars(select(Video).where(Video.status == "in_progress")):
                w_host, _, rest = (v.worker or "").partition(":")
                pid = int(rest.split(":")[0]) if rest.split(":")[0].isdigit() else -1
                dead_here = w_host == host and v.worker != self.worker_id and not _pid_alive(pid)
                silent = (v.heartbeat_at or 0) < time.time() - self.settings.stale_after_s
                if dead_here or silent:
                    requeue.append(v.id)
        if requeue:
            with self.db.session.begin() as s:
                s.execute(
                    update(Video).where(Video.id.in_(requeue), Video.status == "in_progress").values(status="queued", progress=0, worker=None)
                )
            log.warning("re-queued %d jobs left by dead workers", len(requeue))
            self.notify()
        return len(requeue)

    # --- workers ------------------------------------------------------------------------------
    def claim(self) -> str | None:
        """Take the oldest queued job; a conditional UPDATE makes sure only one worker gets it."""
        for _ in range(5):
            with self.db.session() as s:
                vid = s.scalar(select(Video.id).where(Video.status == "queued", Video.deleted == 0).order_by(Video.seq).limit(1))
            if vid is None:
                return None
            if self._take(vid):
                return vid
        return None

    def _take(self, vid: str) -> bool:
        """Claim queued job `vid` for this worker; False if another worker got it first."""
        with self.db.session.begin() as s:
            res = s.execute(
                update(Video)
                .where(Video.id == vid, Video.status == "queued")
                .values(status="in_progress", worker=self.worker_id, heartbeat_at=time.time(), attempts=Video.attempts + 1, progress=0)
            )
        return res.rowcount == 1

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                vid = self.claim()
            except Exception:
                log.exception("claiming a job failed")
                vid = None
            if vid is None:
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            with self._lock:
                self._running.add(vid)
            batch = [vid]
            try:
                batch = self._gather(vid)
                if len(batch) > 1:
                    self.run_batch(batch)
                else:
                    self.run(vid)
            finally:
                with self._lock:
                    self._running.difference_update(batch)

    def _gather(self, vid: str) -> list[str]:
        """`vid` and, when its model can batch, queued jobs alike enough to share its denoising run
        (same model, size, frames, steps), claimed the same conditional way."""
        if self.settings.max_batch < 2:
            return [vid]
        params, model_name, prompt, kind = self._load(vid)
        try:
            backend = self.registry.get(model_name)
            key_of = getattr(backend, "batch_key", None)
            if key_of is None or kind != "create" or params.get("image"):
                return [vid]
            key = key_of(self._request(params, prompt, kind))
        except Exception:
            return [vid]  # run() reports whatever is wrong with this job
        if key is None:
            return [vid]
        batch = [vid]
        deadline = time.time() + self.settings.batch_wait_s
        while len(batch) < self.settings.max_batch:
            with self.db.session() as s:
                rows = s.execute(
                    select(Video.id, Video.params, Video.prompt)
                    .where(Video.status == "queued", Video.deleted == 0, Video.model == model_name, Video.kind == "create")
                    .order_by(Video.seq)
                    .limit(64)
                ).all()
            for rid, rparams, rprompt in rows:
                if len(batch) >= self.settings.max_batch:
                    break
                if rparams.get("image") or key_of(self._request(dict(rparams), rprompt or "", "create")) != key:
                    continue
                if self._take(rid):
                    batch.append(rid)
                    with self._lock:
                        self._running.add(rid)
            if len(batch) >= self.settings.max_batch or time.time() >= deadline or self._stop.is_set():
                break
            time.sleep(0.05)
        return batch

    def _heartbeat(self) -> None:
        last_recover = time.time()
        while not self._stop.wait(self.settings.heartbeat_s):
            with self._lock:
                running = list(self._running)
            try:
                if running:
                    with self.db.session.begin() as s:
                        s.execute(update(Video).where(Video.id.in_(running), Video.worker == self.worker_id).values(heartbeat_at=time.time()))
                if time.time() - last_recover > self.settings.stale_after_s / 2:
                    self.recover()
                    last_recover = time.time()
            except Exception:
                log.exception("heartbeat failed")

    # --- one job ------------------------------------------------------------------------------
    def _progress(self, vid: str, on_cancel=None):
        """A progress callback for `vid` that stops the job (raises Cancelled) once it is deleted;
        with `on_cancel`, it reports the cancellation instead (a batch runs on for the others)."""
        state = {"last": 0.0, "cancelled": False}

        def progress(f: float) -> None:
            t = time.time()
            pct = int(min(max(f, 0.0), 1.0) * 90)  # the last 10% are encoding and storing
            if state["cancelled"] or (t - state["last"] < 0.25 and pct < 90):
                return
            state["last"] = t
            with self.db.session.begin() as s:
                row = s.get(Video, vid)
                gone = row is None or row.deleted or row.worker != self.worker_id
                if not gone and pct > row.progress:
                    row.progress = pct
            if gone:
                state["cancelled"] = True
                if on_cancel is None:
                    raise Cancelled()
                on_cancel(vid)

        return progress

    def _load(self, vid: str):
        with self.db.session() as s:
            v = s.get(Video, vid)
            return dict(v.params), v.model, v.prompt or "", v.kind

    def run(self, vid: str) -> None:
        params, model_name, prompt, kind = self._load(vid)
        progress = self._progress(vid)
        try:
            backend = self.registry.get(model_name)
            req = self._request(params, prompt, kind, backend)
            result = backend.generate(req, progress)
            progress(1.0)
            self._store_outputs(vid, result, params)
            self._finish(vid, status="completed")
        except Cancelled:
            log.info("job %s cancelled", vid)
            self.blobs.delete_prefix(f"videos/{vid}")
        except ModelError as e:
            self._finish(vid, status="failed", error={"code": e.code, "message": e.message, "param": e.param})
        except Exception as e:
            log.exception("job %s failed", vid)
            self._finish(vid, status="failed", error={"code": "generation_failed", "message": f"{type(e).__name__}: {e}"})

    def run_batch(self, vids: list[str]) -> None:
        """Jobs that share one denoising run. A deleted one is dropped from the results; if the
        run fails as a batch (out of memory, say), each job runs again on its own."""
        loaded = [self._load(v) for v in vids]
        cancelled: set[str] = set()

        def on_cancel(vid: str) -> None:
            cancelled.add(vid)
            if cancelled >= set(vids):
                raise Cancelled()

        try:
            backend = self.registry.get(loaded[0][1])
            reqs = [self._request(params, prompt, kind, backend) for params, _, prompt, kind in loaded]
            progresses = [self._progress(v, on_cancel) for v in vids]
            results = backend.generate_batch(reqs, progresses)
            log.info("jobs %s ran as one batch of %d", ", ".join(vids), len(vids))
        except Cancelled:
            for v in vids:
                self.blobs.delete_prefix(f"videos/{v}")
            return
        except Exception as e:
            log.warning("a batch of %d jobs failed (%s: %s); running them one at a time", len(vids), type(e).__name__, e)
            for v in vids:
                if v not in cancelled:
                    self.run(v)
            return
        for v, (params, *_), result in zip(vids, loaded, results):
            if v in cancelled:
                self.blobs.delete_prefix(f"videos/{v}")
                continue
            try:
                self._store_outputs(v, result, params)
                self._finish(v, status="completed")
            except Exception as e:
                log.exception("storing job %s failed", v)
                self._finish(v, status="failed", error={"code": "generation_failed", "message": f"{type(e).__name__}: {e}"})

    def _request(self, params: dict, prompt: str, kind: str, backend=None) -> GenerationRequest:
        """The job's request; its source clip is decoded at the size `backend` works at where it
        says one (`input_size`), else at its own."""
        req = GenerationRequest(
            prompt=prompt,
            seconds=float(params["gen_seconds"]),
            width=int(params["width"]),
            height=int(params["height"]),
            seed=int(params["seed"]),
            strength=float(params.get("strength", 0.6)),
            mode=kind,
            characters=list(params.get("characters", [])),
            preset=params.get("model_requested"),
        )
        if params.get("image"):
            req.image = media.load_image(self.blobs.get(params["image"]), max_pixels=self.settings.max_image_pixels)
        if params.get("source"):
            size = getattr(backend, "input_size", None)
            d = media.decode(self.blobs.local_path(params["source"]), fit_to=size(req.width, req.height) if size else None)
            req.video, req.video_fps, req.audio, req.audio_rate = d.frames, d.fps, d.audio, d.sample_rate
        return req

    def _store_outputs(self, vid: str, result, params: dict) -> None:
        w, h = int(params["width"]), int(params["height"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "video.mp4"
            media.encode_mp4(
                path,
                result.frames,
                result.fps,
                result.audio,
                result.sample_rate,
                size=(w, h),
                out_fps=self.settings.output_fps,
                preset=self.settings.encode_preset,
                metadata={"comment": f"Generated by Vitascope ({vid})"},
            )
            self.blobs.put_file(blob_key(vid, "video"), path)
        frames = result.frames
        self.blobs.put(blob_key(vid, "thumbnail"), media.thumbnail(frames, (w, h)))
        self.blobs.put(blob_key(vid, "spritesheet"), media.spritesheet(frames))

    def _finish(self, vid: str, *, status: str, error: dict | None = None) -> None:
        with self.db.session.begin() as s:
            row = s.get(Video, vid)
            if row is None or row.deleted or row.worker != self.worker_id:
                self.blobs.delete_prefix(f"videos/{vid}")  # cancelled, or re-queued under us
                return
            row.status = status
            row.error = error
            row.completed_at = now()
            if status == "completed":
                row.progress = 100
            if self.settings.webhook_url:
                s.add(webhooks.event(vid, f"video.{status}"))
        self.deliverer.wake.set()
