"""The `vitascope` command against a local store."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import cli
from vitascope import media


def test_generate_then_videos_commands(tmp_path):
    out = tmp_path / "clip.mp4"
    r = cli(tmp_path, "generate", "a red ball bouncing on the sand", "--seconds", "4", "--size", "720x1280", "--seed", "3", "--out", str(out))
    assert "wrote" in r.stdout
    info = media.probe(out)
    assert (info["width"], info["height"]) == (720, 1280) and abs(info["duration"] - 4.0) < 0.1 and info["audio_codec"] == "aac"
    listing = cli(tmp_path, "videos", "list").stdout
    assert "completed" in listing
    vid = next(w for w in listing.split() if w.startswith("video_"))
    assert '"status": "completed"' in cli(tmp_path, "videos", "show", vid).stdout
    thumb = tmp_path / "t.webp"
    cli(tmp_path, "videos", "download", vid, "--variant", "thumbnail", "--out", str(thumb))
    assert Image.open(thumb).size == (720, 1280)
    cli(tmp_path, "videos", "delete", vid)
    assert vid not in cli(tmp_path, "videos", "list").stdout
    assert cli(tmp_path, "videos", "show", vid, check=False).returncode == 2


def test_generate_is_reproducible_and_takes_a_first_image(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    cli(tmp_path, "generate", "a blue box", "--seed", "5", "--out", str(a))
    cli(tmp_path, "generate", "a blue box", "--seed", "5", "--out", str(b))
    assert np.array_equal(media.decode(a).frames, media.decode(b).frames)
    img = tmp_path / "first.png"
    Image.new("RGB", (64, 64), (40, 70, 210)).save(img)
    cli(tmp_path, "generate", "a blue box", "--image", str(img), "--out", str(tmp_path / "c.mp4"))


def test_bad_input_is_a_clear_error(tmp_path):
    r = cli(tmp_path, "generate", "x", "--seconds", "5", check=False)
    assert r.returncode == 2 and "seconds" in r.stdout
    r = cli(tmp_path, "generate", "x", "--model", "nope", check=False)
    assert r.returncode == 2 and "Unknown model" in r.stdout


def test_keys_and_models(tmp_path):
    key = cli(tmp_path, "keys", "create", "--name", "ci").stdout.strip().splitlines()[-1]
    assert key.startswith("vs-")
    listing = cli(tmp_path, "keys", "list").stdout
    kid = next(w for w in listing.split() if w.startswith("key_"))
    cli(tmp_path, "keys", "revoke", kid)
    assert "yes" in cli(tmp_path, "keys", "list").stdout
    models = cli(tmp_path, "models").stdout
    assert "vitascope-world" in models and "sora-2" in models


def test_encoding_presets_make_the_same_clip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(np.repeat(rng.integers(0, 255, (12, 8, 14, 3), dtype=np.uint8), 8, 1), 8, 2)  # 1 s at 12 fps, 64x112
    audio = (0.1 * rng.standard_normal(24000)).astype(np.float32)
    sizes = {}
    for preset in ("ultrafast", "veryfast"):
        path = tmp_path / f"{preset}.mp4"
        media.encode_mp4(path, frames, 12, audio, 24000, size=(224, 128), out_fps=24, preset=preset)
        d = media.decode(path)
        assert d.frames.shape == (24, 128, 224, 3) and d.audio is not None
        sizes[preset] = path.stat().st_size
    assert sizes["ultrafast"] > sizes["veryfast"]  # a faster preset spends more bits on the same quality
    with pytest.raises(ValueError, match="preset must be one of .*superfast"):
        media.encode_mp4(tmp_path / "x.mp4", frames, 12, audio, 24000, preset="quick")


def test_a_source_decoded_at_the_size_a_model_works_at_is_the_same_as_fitted_after(tmp_path):
    from vitascope.models.world import WorldModel

    rng = np.random.default_rng(1)
    frames = np.repeat(np.repeat(rng.integers(0, 255, (6, 9, 16, 3), dtype=np.uint8), 40, 1), 40, 2)  # 640x360
    path = tmp_path / "src.mp4"
    media.encode_mp4(path, frames, 12, None, 24000)
    model = WorldModel.random("t", "world-tiny", lexicon=None)
    H, W = model.input_size(1920, 1080)
    assert (H, W) == (64, 112) and model.input_size(1080, 1920) == (112, 64)
    small = media.decode(path, fit_to=(H, W))
    assert small.frames.shape == (6, 64, 112, 3) and small.fps == 12
    assert np.array_equal(small.frames, media.fit(media.decode(path).frames, H, W))
