"""Settings are data: read once from the environment (VITASCOPE_*) and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITASCOPE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".vitascope", description="Data directory: database, blobs.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the data directory.")
    workers: int = Field(default=1, ge=1, le=64, description="Jobs generated at once by this process.")
    default_model: str = Field(default="vitascope-world", description="Model used when a request names none.")
    test_models: bool = Field(default=False, description="Register the tiny randomly initialised test models.")
    max_prompt_chars: int = Field(default=4000, description="Longest prompt accepted.")
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, description="Largest uploaded file accepted.")
    max_image_pixels: int = Field(default=4096 * 4096, description="Largest uploaded image, in pixels.")
    poll_after_ms: int = Field(default=1000, description="openai-poll-after-ms sent with a video that is not done.")
    webhook_url: str | None = Field(default=None, description="Where video.completed / video.failed events are POSTed.")
    webhook_secret: str | None = Field(default=None, description="Standard Webhooks secret (whsec_...) that signs events.")
    webhook_max_attempts: int = Field(default=8, description="Deliveries tried per event before giving up.")
    webhook_backoff_s: float = Field(default=1.0, description="First retry delay; doubles on each attempt.")
    heartbeat_s: float = Field(default=5.0, description="How often a running job proves its worker is alive.")
    stale_after_s: float = Field(default=60.0, description="A running job silent this long is re-queued.")
    output_fps: int = Field(default=24, description="Frame rate of the delivered MP4.")
    auth: bool = Field(default=True, description="Require a bearer API key on /v1.")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'vitascope.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"
