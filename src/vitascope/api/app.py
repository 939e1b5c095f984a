"""The OpenAI-compatible HTTP API: /v1/videos, /v1/videos/characters, /v1/models.

Routes are thin: they read the request (JSON or multipart, as the `openai` client sends either),
call a service method, and shape the answer as the `openai` package's types. Every error leaves
as {"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

import base64
import binascii
import logging
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from vitascope.errors import InvalidRequest, PayloadTooLarge, UnsupportedMedia, VitascopeError
from vitascope.service import Upload, Vitascope, video_public

log = logging.getLogger(__name__)


# --- schemas (for the OpenAPI document; bodies are read by `read_body`) ------------------------
class VideoPublic(BaseModel):
    id: str
    object: Literal["video"] = "video"
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    error: dict | None = None
    model: str
    progress: int
    prompt: str | None = None
    remixed_from_video_id: str | None = None
    seconds: str
    size: str
    status: Literal["queued", "in_progress", "completed", "failed"]


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VideoPublic]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class CharacterPublic(BaseModel):
    id: str
    object: Literal["character"] = "character"
    created_at: int
    name: str


class ImageReference(BaseModel):
    image_url: str = Field(description="A base64 data URL of the first frame: data:image/png;base64,...")


class VideoRef(BaseModel):
    id: str


class VideoCreate(BaseModel):
    prompt: str = Field(max_length=100_000)
    model: str | None = None
    seconds: str | int | None = Field(default=None, description="4, 8 or 12")
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, such as 1280x720")
    input_reference: ImageReference | None = None
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    characters: list[str] | None = None


class VideoRemix(BaseModel):
    prompt: str = Field(max_length=100_000)
    strength: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class VideoEdit(BaseModel):
    prompt: str = Field(max_length=100_000)
    video: VideoRef
    model: str | None = None
    strength: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class VideoExtend(BaseModel):
    prompt: str = Field(max_length=100_000)
    video: VideoRef
    seconds: str | int = Field(description="4, 8, 12, 16 or 20: the length added")
    model: str | None = None
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Missing or invalid API key"},
    404: {"description": "Not found"},
    413: {"description": "Upload too large"},
    415: {"description": "Unsupported content type"},
}


def _body_doc(model: type[BaseModel], files: dict[str, str]) -> dict:
    """openapi_extra for a route that takes JSON or multipart (with file fields)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    form = {"type": "object", "required": schema.get("required", []), "properties": {k: {"type": "string"} for k in schema["properties"]}}
    for f, desc in files.items():
        form["properties"][f] = {"type": "string", "format": "binary", "description": desc}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}, "multipart/form-data": {"schema": form}},
        }
    }


# --- request reading ---------------------------------------------------------------------------
async def read_body(request: Request, model: type[BaseModel], max_bytes: int) -> tuple[dict, dict[str, Upload]]:
    """Fields and uploads of a JSON or multipart body, validated by `model` (files aside)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLarge(f"The request body is {length} bytes; at most {max_bytes} are accepted.")
    files: dict[str, Upload] = {}
    if ctype == "application/json":
        raw = await request.body()
        if len(raw) > max_bytes:
            raise PayloadTooLarge(f"The request body is {len(raw)} bytes; at most {max_bytes} are accepted.")
        try:
            data = model.model_validate_json(raw or b"{}").model_dump(exclude_none=True)
        except ValueError as e:
            raise _validation_error(e) from None
        return data, files
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_part_size=max_bytes)
        except Exception as e:  # malformed multipart bodies raise many kinds
            raise InvalidRequest(f"Could not parse the form body: {e}") from None
        data: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                blob = await value.read()
                files[_base_key(key)] = Upload(filename=value.filename or "", content_type=value.content_type or "", data=blob)
                continue
            _assign(data, key, value)
        body_fields = {k: v for k, v in data.items() if k not in files}
        try:
            validated = model.model_validate({k: v for k, v in body_fields.items() if k in model.model_fields}).model_dump(exclude_none=True)
        except ValueError as e:
            raise _validation_error(e) from None
        return validated, files
    raise UnsupportedMedia(f"Content-Type must be application/json or multipart/form-data. Got {ctype or 'none'!r}.")


def _base_key(key: str) -> str:
    return key.split("[", 1)[0]


def _assign(data: dict, key: str, value: str) -> None:
    """Form keys as the openai client writes them: video[id]=..., characters[]=..., input_reference[image_url]=..."""
    if "[" not in key:
        data[key] = value
        return
    base, rest = key.split("[", 1)
    sub = rest.rstrip("]")
    if sub == "" or sub.isdigit():
        data.setdefault(base, [])
        if isinstance(data[base], list):
            data[base].append(value)
    else:
        data.setdefault(base, {})
        if isinstance(data[base], dict):
            data[base][sub] = value


def _validation_error(e) -> InvalidRequest:
    errs = e.errors() if hasattr(e, "errors") else []
    if errs:
        first = errs[0]
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        return InvalidRequest(f"Invalid value for '{param}': {first.get('msg')}." if param else f"Invalid request body: {first.get('msg')}.", param=param)
    return InvalidRequest(f"Invalid request body: {e}")


def _source_video(data: dict, files: dict[str, Upload]) -> Upload | dict:
    """The `video` of an edit or extension: an uploaded file or a {"id": ...} reference."""
    video = files.get("video") or data.get("video")
    if video is None:
        raise InvalidRequest('video is required: an uploaded video file or {"id": "video_..."}.', param="video")
    return video


def _data_url_image(ref: dict | None) -> Upload | None:
    if not ref:
        return None
    url = ref.get("image_url") if isinstance(ref, dict) else None
    if not isinstance(url, str) or not url.startswith("data:"):
        raise InvalidRequest("input_reference.image_url must be a base64 data URL (data:image/png;base64,...); remote URLs are not fetched.", param="input_reference")
    head, _, payload = url.partition(",")
    if ";base64" not in head:
        raise InvalidRequest("input_reference.image_url must be base64-encoded.", param="input_reference")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("input_reference.image_url is not valid base64.", param="input_reference") from None
    return Upload(filename="image", content_type=head[5:].split(";")[0], data=data)


# --- app ---------------------------------------------------------------------------------------
def _owner(request: Request) -> str:
    """The user behind the request's bearer key (401 in OpenAI's shape without a valid one)."""
    return request.app.state.vs.authenticate(request.headers.get("authorization"))


Owner = Annotated[str, Depends(_owner)]


def create_app(vs: Vitascope, *, start_engine: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start_engine:
            vs.engine.start()
        yield
        if start_engine:
            vs.engine.stop()

    app = FastAPI(title="Vitascope", version="0.1.0", description="The open, self-hostable Videos API.", lifespan=lifespan)

    @app.exception_handler(VitascopeError)
    async def _vs_error(request: Request, exc: VitascopeError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        err = _validation_error(exc)
        return JSONResponse(err.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"message": str(exc.detail), "type": "invalid_request_error", "param": None, "code": code}}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error")
        body = {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}}
        return JSONResponse(body, status_code=500)

    app.state.vs = vs
    max_bytes = vs.settings.max_upload_bytes + 1024 * 1024

    def video_response(v) -> JSONResponse:
        """A video in openai's shape; while it is not done, with the pace the SDK's poll should keep."""
        headers = {"openai-poll-after-ms": str(vs.settings.poll_after_ms)} if v.status in ("queued", "in_progress") else {}
        return JSONResponse(video_public(v), headers=headers)

    @app.post("/v1/videos", response_model=VideoPublic, responses=ERROR_RESPONSES, openapi_extra=_body_doc(VideoCreate, {"input_reference": "First frame image"}))
    async def create_video(request: Request, who: Owner):
        data, files = await read_body(request, VideoCreate, max_bytes)
        image = files.get("input_reference") or _data_url_image(data.get("input_reference"))
        v = await run_in_threadpool(
            vs.create_video,
            owner=who,
            prompt=data.get("prompt"),
            model=data.get("model"),
            seconds=data.get("seconds"),
            size=data.get("size"),
            image=image,
            seed=data.get("seed"),
            characters=data.get("characters"),
        )
        return video_response(v)

    @app.get("/v1/videos", response_model=VideoList, responses=ERROR_RESPONSES)
    async def list_videos(
        who: Owner,
        after: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    ):
        rows, more = await run_in_threadpool(vs.list_videos, owner=who, after=after, limit=limit, order=order)
        data = [video_public(v) for v in rows]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None, "has_more": more}

    @app.get("/v1/videos/{video_id}", response_model=VideoPublic, responses=ERROR_RESPONSES)
    async def retrieve_video(video_id: str, who: Owner):
        v = await run_in_threadpool(vs.get_video, owner=who, video_id=video_id)
        return video_response(v)

    @app.delete("/v1/videos/{video_id}", response_model=VideoDeleted, responses=ERROR_RESPONSES)
    async def delete_video(video_id: str, who: Owner):
        vid = await run_in_threadpool(vs.delete_video, owner=who, video_id=video_id)
        return {"id": vid, "object": "video.deleted", "deleted": True}

    @app.get(
        "/v1/videos/{video_id}/content",
        responses={**ERROR_RESPONSES, 200: {"content": {"video/mp4": {}, "image/webp": {}, "image/jpeg": {}}, "description": "The asset"}},
        response_class=FileResponse,
    )
    async def download_content(video_id: str, who: Owner, variant: Annotated[Literal["video", "thumbnail", "spritesheet"], Query()] = "video"):
        path, media_type = await run_in_threadpool(vs.content, owner=who, video_id=video_id, variant=variant)
        return FileResponse(path, media_type=media_type)

    @app.post("/v1/videos/{video_id}/remix", response_model=VideoPublic, responses=ERROR_RESPONSES, openapi_extra=_body_doc(VideoRemix, {}))
    async def remix_video(video_id: str, request: Request, who: Owner):
        data, _ = await read_body(request, VideoRemix, max_bytes)
        v = await run_in_threadpool(vs.remix_video, owner=who, video_id=video_id, prompt=data.get("prompt"), strength=data.get("strength"), seed=data.get("seed"))
        return video_response(v)

    @app.post("/v1/videos/edits", response_model=VideoPublic, responses=ERROR_RESPONSES, openapi_extra=_body_doc(VideoEdit, {"video": "Source video file"}))
    async def edit_video(request: Request, who: Owner):
        data, files = await read_body(request, VideoEditBody, max_bytes)
        video = _source_video(data, files)
        v = await run_in_threadpool(vs.edit_video, owner=who, video=video, prompt=data.get("prompt"), strength=data.get("strength"), seed=data.get("seed"), model=data.get("model"))
        return video_response(v)

    @app.post("/v1/videos/extensions", response_model=VideoPublic, responses=ERROR_RESPONSES, openapi_extra=_body_doc(VideoExtend, {"video": "Source video file"}))
    async def extend_video(request: Request, who: Owner):
        data, files = await read_body(request, VideoExtendBody, max_bytes)
        video = _source_video(data, files)
        v = await run_in_threadpool(vs.extend_video, owner=who, video=video, prompt=data.get("prompt"), seconds=data.get("seconds"), seed=data.get("seed"), model=data.get("model"))
        return video_response(v)

    @app.post("/v1/videos/characters", response_model=CharacterPublic, responses=ERROR_RESPONSES, openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["name", "video"], "properties": {"name": {"type": "string"}, "video": {"type": "string", "format": "binary"}}}}}}})
    async def create_character(request: Request, who: Owner):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "multipart/form-data":
            raise UnsupportedMedia(f"Content-Type must be multipart/form-data with a video file. Got {ctype or 'none'!r}.")
        data, files = await read_body(request, _CharacterForm, max_bytes)
        if "video" not in files:
            raise InvalidRequest("video is required: the video file of the character.", param="video")
        c = await run_in_threadpool(vs.create_character, owner=who, name=data.get("name"), video=files["video"])
        return {"id": c.id, "object": "character", "created_at": c.created_at, "name": c.name}

    @app.get("/v1/videos/characters/{character_id}", response_model=CharacterPublic, responses=ERROR_RESPONSES)
    async def get_character(character_id: str, who: Owner):
        c = await run_in_threadpool(vs.get_character, owner=who, character_id=character_id)
        return {"id": c.id, "object": "character", "created_at": c.created_at, "name": c.name}

    @app.get("/v1/models", responses=ERROR_RESPONSES)
    async def list_models(who: Owner) -> dict:
        return {"object": "list", "data": vs.models()}

    @app.get("/health", include_in_schema=False)
    async def health() -> dict:
        return {"status": "ok"}

    return app


class _CharacterForm(BaseModel):
    name: str | None = None


def _with_file(model: type[BaseModel], file_field: str) -> type[BaseModel]:
    """The model with `file_field` optional: in multipart it arrives as a file, not a field."""
    fields = {k: (v.annotation | None, None) if k == file_field else (v.annotation, v) for k, v in model.model_fields.items()}
    return create_model(model.__name__ + "Body", **fields)


VideoEditBody = _with_file(VideoEdit, "video")
VideoExtendBody = _with_file(VideoExtend, "video")
