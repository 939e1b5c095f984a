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
    encode_preset: str = Field(default="ultrafast", pattern="^(ultrafast|superfast|veryfast|faster|fast|medium|slow|slower|veryslow)$", description="x264 speed preset of the delivered MP4, at constant quality (CRF 20): slower presets make smaller files.")
    auth: bool = Field(default=True, description="Require a bearer API key on /v1.")
    models_dir: Path | None = Field(default=None, description="Where open-weight model directories live (<models_dir>/<model name>); default <home>/models.")
    device: str = Field(default="auto", description="Device of the open-weight models: auto (CUDA when present), cuda, cuda:1, cpu.")
    gpu_dtype: str = Field(default="bfloat16", pattern="^(bfloat16|float16|float32)$", description="Weights and compute dtype of open-weight models on CUDA.")
    gpu_attention: str = Field(default="auto", description="Attention backend: auto (FlashAttention 3 or 2 when installed, else PyTorch SDPA), native, flash, _flash_3, sage.")
    gpu_cfg_batch: bool = Field(default=True, description="Run the prompt's and the negative prompt's passes as one batch.")
    gpu_compile: bool = Field(default=True, description="torch.compile the transformer's repeated blocks (CUDA; the first job compiles).")
    gpu_vae_tiling: bool = Field(default=True, description="Decode video in tiles to save memory.")
    gpu_fp8: bool = Field(default=False, description="FP8 weights and activations through torchao (compute capability 8.9+).")
    gpu_step_cache: float = Field(default=0.0, ge=0.0, le=1.0, description="First-block step cache threshold; 0 is off, 0.05-0.1 is faster at some cost in detail.")
    gpu_offload: str = Field(default="auto", pattern="^(auto|none|model|group)$", description="Memory mode: auto (by free GPU memory), none, model (CPU offload per component), group (layer groups streamed in).")
    batch_wait_s: float = Field(default=0.5, ge=0.0, le=60.0, description="How long a batchable job waits for alike jobs to join its run.")
    max_batch: int = Field(default=4, ge=1, le=64, description="Most jobs of one model and the same settings denoised together.")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'vitascope.db'}"

    @property
    def open_models_dir(self) -> Path:
        return self.models_dir or self.home / "models"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"
