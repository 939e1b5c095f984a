"""Vitascope's services: what the API routes and the CLI call, with keyword-only arguments.

`Vitascope` holds the settings, database, blob store, model registry and job engine of one
process. Every check on a request happens here, before a job is written, so a queued job is
one that can run.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import time
from dataclasses import dataclass

from PIL import Image
from sqlalchemy import select

from vitascope import media
from vitascope.errors import InvalidRequest, NotFound, PayloadTooLarge, Unauthorized
from vitascope.jobs.engine import VARIANTS, Engine, blob_key
from vitascope.models.base import ModelError, Registry, check_request
from vitascope.models.registry import default_registry
from vitascope.settings import Settings
from vitascope.store.blobs import LocalBlobStore
from vitascope.store.db import ApiKey, Character, Database, Video, now

SORA_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024", "1080x1920", "1920x1080")
CREATE_SECONDS = ("4", "8", "12")
EXTEND_SECONDS = ("4", "8", "12", "16", "20")


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


def parse_size(size: str | None) -> tuple[int, int]:
    size = size or "720x1280"
    try:
        w, h = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise InvalidRequest(f"size must be WIDTHxHEIGHT, such as 1280x720. Got {size!r}.", param="size") from None
    if not (64 <= w <= 4096 and 64 <= h <= 4096) or w % 2 or h % 2:
        raise InvalidRequest(f"size {size!r} is not supported: width and height must be even, from 64 to 4096 pixels. Sora's sizes: {', '.join(SORA_SIZES)}.", param="size")
    return w, h


def parse_seconds(seconds, allowed: tuple[str, ...], param: str = "seconds") -> int:
    s = str(seconds if seconds is not None else "4").strip()
    if s not in allowed:
        raise InvalidRequest(f"seconds must be one of {', '.join(allowed)}. Got {s!r}.", param=param)
    return int(s)


def video_public(v: Video) -> dict:
    """A video row in the shape of openai.types.Video."""
    err = None
    if v.error:
        err = {"code": v.error.get("code", "error"), "message": v.error.get("message", ""), "param": v.error.get("param")}
    return {
        "id": v.id,
        "object": "video",
        "created_at": v.created_at,
        "completed_at": v.completed_at,
        "expires_at": v.expires_at,
        "error": err,
        "model": v.params.get("model_requested", v.model),
        "progress": v.progress,
        "prompt": v.prompt,
        "remixed_from_video_id": v.remixed_from_video_id,
        "seconds": v.seconds,
        "size": v.size,
        "status": v.status,
    }


class Vitascope:
    def __init__(self, settings: Settings, registry: Registry | None = None):
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.db_url)
        self.blobs = LocalBlobStore(settings.blob_dir)
        self.registry = registry or default_registry(settings)
        self.engine = Engine(settings, self.db, self.blobs, self.registry)

    # --- API keys -----------------------------------------------------------------------------
    def create_key(self, *, name: str, owner: str | None = None) -> tuple[ApiKey, str]:
        secret = "vs-" + secrets.token_urlsafe(32)
        key = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            owner=owner or name,
            key_hash=hashlib.sha256(secret.encode()).hexdigest(),
            prefix=secret[:8],
            created_at=now(),
        )
        with self.db.session.begin() as s:
            s.add(key)
        return key, secret

    def list_keys(self) -> list[ApiKey]:
        with self.db.session() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))

    def revoke_key(self, *, key_id: str) -> None:
        with self.db.session.begin() as s:
            k = s.get(ApiKey, key_id)
            if k is None:
                raise NotFound(f"No API key with id '{key_id}'.", param="key_id")
            k.revoked_at = now()

    def authenticate(self, authorization: str | None) -> str:
        """The owner of the bearer key in an Authorization header; Unauthorized otherwise."""
        if not self.settings.auth:
            return "local"
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'; create one with `vitascope keys create`.")
        token = authorization.split(None, 1)[1].strip()
        h = hashlib.sha256(token.encode()).hexdigest()
        with self.db.session() as s:
            k = s.scalar(select(ApiKey).where(ApiKey.key_hash == h, ApiKey.revoked_at.is_(None)))
        if k is None:
            raise Unauthorized(f"Incorrect API key provided: {token[:6]}***. Create one with `vitascope keys create`.")
        return k.owner

    # --- videos -------------------------------------------------------------------------------
    def _check_prompt(self, prompt, param: str = "prompt") -> str:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt must be a non-empty string.", param=param)
        if len(prompt) > self.settings.max_prompt_chars:
            raise InvalidRequest(f"prompt is {len(prompt)} characters long; at most {self.settings.max_prompt_chars} are allowed.", param=param)
        if "\x00" in prompt:
            raise InvalidRequest("prompt must not contain NUL characters.", param=param)
        return prompt

    def _resolve_model(self, model: str | None):
        name = model or self.settings.default_model
        try:
            entry = self.registry.entry(name)
        except ModelError as e:
            raise InvalidRequest(e.message, param="model", code=e.code) from None
        ok, where = entry.available()
        if not ok:
            raise InvalidRequest(f"Model '{name}' is not available: {where}.", param="model", code="model_not_available")
        return name, entry

    def _check_caps(self, entry, *, name: str, mode: str, w: int, h: int, seconds: float, has_image: bool, characters: list[str]):
        try:
            check_request(entry.capabilities, model=name, mode=mode, width=w, height=h, seconds=seconds, has_image=has_image, characters=characters)
            if entry.check is not None:
                entry.check(w, h, seconds)
        except ModelError as e:
            raise InvalidRequest(e.message, param=e.param) from None

    def _check_upload(self, up: Upload, *, param: str, kinds: tuple[str, ...]) -> None:
        if len(up.data) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"{param} is {len(up.data)} bytes; at most {self.settings.max_upload_bytes} are accepted.", param=param)
        if not len(up.data):
            raise InvalidRequest(f"{param} is empty.", param=param)
        ctype = (up.content_type or "").split(";")[0].strip().lower()
        if ctype and ctype != "application/octet-stream" and not ctype.startswith(kinds):
            raise InvalidRequest(f"{param} must be {' or '.join(k.rstrip('/') for k in kinds)}; got content type {ctype!r}.", param=param, code="invalid_file")

    def _owned_video(self, owner: str | None, video_id: str, *, param: str = "video_id") -> Video:
        with self.db.session() as s:
            v = s.get(Video, video_id) if isinstance(video_id, str) else None
        if v is None or v.deleted or (owner is not None and v.owner != owner):
            raise NotFound(f"No video found with id '{video_id}'.", param=param)
        return v

    def _insert(self, *, vid: str, owner: str, kind: str, model: str, model_requested: str, prompt: str, seconds: int, size: str, params: dict, remixed_from: str | None = None) -> Video:
        params = {**params, "model_requested": model_requested}
        v = Video(
            id=vid,
            seq=time.time_ns(),
            owner=owner,
            kind=kind,
            status="queued",
            model=model,
            prompt=prompt,
            seconds=str(seconds),
            size=size,
            progress=0,
            params=params,
            remixed_from_video_id=remixed_from,
            created_at=now(),
            attempts=0,
            deleted=0,
        )
        with self.db.session.begin() as s:
            s.add(v)
        self.engine.notify()
        return v

    def create_video(
        self,
        *,
        owner: str,
        prompt,
        model: str | None = None,
        seconds=None,
        size: str | None = None,
        image: Upload | None = None,
        seed: int | None = None,
        characters: list[str] | None = None,
    ) -> Video:
        prompt = self._check_prompt(prompt)
        secs = parse_seconds(seconds, CREATE_SECONDS)
        w, h = parse_size(size)
        name, entry = self._resolve_model(model)
        chars = [c for c in (characters or []) if c]
        for c in chars:
            self.get_character(owner=owner, character_id=c, param="characters")
        self._check_caps(entry, name=name, mode="create", w=w, h=h, seconds=secs, has_image=image is not None, characters=chars)
        params = {"seed": _seed(seed), "width": w, "height": h, "gen_seconds": secs, "characters": chars}
        vid = _new_video_id()
        if image is not None:
            self._check_upload(image, param="input_reference", kinds=("image/",))
            try:
                arr = media.load_image(image.data, max_pixels=self.settings.max_image_pixels)
            except media.MediaError as e:
                raise InvalidRequest(f"input_reference: {e}.", param="input_reference", code="invalid_image") from None
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, "PNG")
            params["image"] = f"uploads/{vid}/input.png"
            self.blobs.put(params["image"], buf.getvalue())  # stored before the job exists, so it is there when a worker starts
        return self._insert(vid=vid, owner=owner, kind="create", model=entry.name, model_requested=model or name, prompt=prompt, seconds=secs, size=f"{w}x{h}", params=params)

    def _source(self, owner: str, video, param: str, vid: str) -> tuple[str, float, str | None, str | None]:
        """A source clip: a completed video of the owner ({id}) or an uploaded file, stored with the
        new video `vid` (so deleting it deletes the upload). -> (blob key, seconds, size, id)."""
        if isinstance(video, Upload):
            self._check_upload(video, param=param, kinds=("video/",))
            key = f"uploads/{vid}/source.mp4"
            self.blobs.put(key, video.data)
            try:
                info = media.probe(self.blobs.local_path(key))
                if not info["width"]:
                    raise media.MediaError("no video stream")
                media.decode(self.blobs.local_path(key), max_frames=1)
            except Exception:
                self.blobs.delete_prefix(key.rsplit("/", 1)[0])
                raise InvalidRequest(f"{param} could not be read as a video.", param=param, code="invalid_file") from None
            return key, float(info["duration"] or 0), f"{info['width']}x{info['height']}", None
        vid = video.get("id") if isinstance(video, dict) else video
        if not isinstance(vid, str) or not vid:
            raise InvalidRequest(f"{param} must be an uploaded video file or {{\"id\": \"video_...\"}}.", param=param)
        src = self._owned_video(owner, vid, param=param)
        if src.status != "completed":
            raise InvalidRequest(f"Video '{vid}' is {src.status}; only a completed video can be used as a source.", param=param, code="invalid_source_video")
        return blob_key(src.id, "video"), float(src.seconds), src.size, src.id

    def remix_video(self, *, owner: str, video_id: str, prompt, strength: float | None = None, seed: int | None = None) -> Video:
        prompt = self._check_prompt(prompt)
        vid = _new_video_id()
        key, secs, size, src_id = self._source(owner, {"id": video_id}, "video_id", vid)
        return self._derived(vid=vid, owner=owner, kind="remix", prompt=prompt, key=key, secs=secs, size=size, src_id=src_id, total=secs, strength=strength, seed=seed, model=None)

    def edit_video(self, *, owner: str, video, prompt, strength: float | None = None, seed: int | None = None, model: str | None = None) -> Video:
        prompt = self._check_prompt(prompt)
        vid = _new_video_id()
        key, secs, size, src_id = self._source(owner, video, "video", vid)
        return self._derived(vid=vid, owner=owner, kind="edit", prompt=prompt, key=key, secs=secs, size=size, src_id=src_id, total=secs, strength=strength, seed=seed, model=model)

    def extend_video(self, *, owner: str, video, prompt, seconds, seed: int | None = None, model: str | None = None) -> Video:
        prompt = self._check_prompt(prompt)
        add = parse_seconds(seconds, EXTEND_SECONDS)
        vid = _new_video_id()
        key, secs, size, src_id = self._source(owner, video, "video", vid)
        total = secs + add
        return self._derived(vid=vid, owner=owner, kind="extend", prompt=prompt, key=key, secs=add, size=size, src_id=src_id, total=total, strength=None, seed=seed, model=model)

    def _derived(self, *, vid, owner, kind, prompt, key, secs, size, src_id, total, strength, seed, model) -> Video:
        if strength is not None and not (0.0 < float(strength) <= 1.0):
            raise InvalidRequest(f"strength must be in (0, 1]. Got {strength}.", param="strength")
        model_name = model
        if model_name is None and src_id:
            with self.db.session() as s:
                model_name = s.get(Video, src_id).model
        name, entry = self._resolve_model(model_name)
        w, h = parse_size(size)
        if w % 2 or h % 2:
            raise InvalidRequest(f"the source video's size {size} is not even.", param="video")
        self._check_caps(entry, name=name, mode=kind, w=w, h=h, seconds=total, has_image=False, characters=[])
        params = {"seed": _seed(seed), "width": w, "height": h, "gen_seconds": secs, "source": key, "strength": float(strength) if strength else 0.6}
        shown = total if float(total).is_integer() else round(total, 2)
        return self._insert(vid=vid, owner=owner, kind=kind, model=entry.name, model_requested=model or name, prompt=prompt, seconds=int(shown) if float(shown).is_integer() else shown, size=f"{w}x{h}", params=params, remixed_from=src_id if kind == "remix" else None)

    def get_video(self, *, owner: str | None, video_id: str) -> Video:
        return self._owned_video(owner, video_id)

    def list_videos(self, *, owner: str | None, after: str | None = None, limit: int = 20, order: str = "desc") -> tuple[list[Video], bool]:
        if not 1 <= limit <= 100:
            raise InvalidRequest(f"limit must be between 1 and 100. Got {limit}.", param="limit")
        if order not in ("asc", "desc"):
            raise InvalidRequest(f"order must be 'asc' or 'desc'. Got {order!r}.", param="order")
        with self.db.session() as s:
            q = select(Video).where(Video.deleted == 0)
            if owner is not None:
                q = q.where(Video.owner == owner)
            if after:
                cursor = s.get(Video, after)
                if cursor is None or (owner is not None and cursor.owner != owner):
                    raise InvalidRequest(f"after: no video with id '{after}'.", param="after")
                q = q.where(Video.seq > cursor.seq if order == "asc" else Video.seq < cursor.seq)
            q = q.order_by(Video.seq.asc() if order == "asc" else Video.seq.desc()).limit(limit + 1)
            rows = list(s.scalars(q))
        return rows[:limit], len(rows) > limit

    def delete_video(self, *, owner: str | None, video_id: str) -> str:
        v = self._owned_video(owner, video_id)
        with self.db.session.begin() as s:
            row = s.get(Video, v.id)
            row.deleted = 1
        self.blobs.delete_prefix(f"videos/{v.id}")
        self.blobs.delete_prefix(f"uploads/{v.id}")
        return v.id

    def content(self, *, owner: str | None, video_id: str, variant: str = "video") -> tuple[str, str]:
        """(local path, media type) of a finished video's asset."""
        if variant not in VARIANTS:
            raise InvalidRequest(f"variant must be one of {', '.join(VARIANTS)}. Got {variant!r}.", param="variant")
        v = self._owned_video(owner, video_id)
        if v.status != "completed":
            raise InvalidRequest(f"Video '{video_id}' is {v.status}; its content is available once it has completed.", param="video_id", code="video_not_ready")
        key = blob_key(v.id, variant)
        if not self.blobs.exists(key):
            raise NotFound(f"The {variant} of video '{video_id}' is missing from storage.", param="variant")
        return str(self.blobs.local_path(key)), VARIANTS[variant][1]

    # --- characters ---------------------------------------------------------------------------
    def create_character(self, *, owner: str, name, video: Upload) -> Character:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidRequest("name must be a non-empty string of at most 200 characters.", param="name")
        self._check_upload(video, param="video", kinds=("video/",))
        cid = "char_" + secrets.token_hex(12)
        key = f"characters/{cid}/source.mp4"
        self.blobs.put(key, video.data)
        try:
            media.decode(self.blobs.local_path(key), max_frames=1)
        except Exception:
            self.blobs.delete_prefix(f"characters/{cid}")
            raise InvalidRequest("video could not be read as a video.", param="video", code="invalid_file") from None
        c = Character(id=cid, owner=owner, name=name.strip(), created_at=now())
        with self.db.session.begin() as s:
            s.add(c)
        return c

    def get_character(self, *, owner: str, character_id: str, param: str = "character_id") -> Character:
        with self.db.session() as s:
            c = s.get(Character, character_id) if isinstance(character_id, str) else None
        if c is None or c.owner != owner:
            raise NotFound(f"No character found with id '{character_id}'.", param=param)
        return c

    # --- models -------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        out = []
        for name in self.registry.names():
            e = self.registry.entry(name)
            ok, where = e.available()
            out.append({"id": name, "object": "model", "created": 0, "owned_by": "vitascope", "available": ok, "detail": where, "description": e.description})
        for alias, target in self.registry.aliases().items():
            out.append({"id": alias, "object": "model", "created": 0, "owned_by": "vitascope", "alias_of": target})
        return out


def _new_video_id() -> str:
    return "video_" + secrets.token_hex(16)


def _seed(seed: int | None) -> int:
    return int(seed) if seed is not None else secrets.randbelow(2**31)
