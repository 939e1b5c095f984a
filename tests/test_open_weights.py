"""Open-weight models through diffusers, on CPU: every pipeline at a tiny random size, saved with
`save_pretrained`, loaded through Vitascope's loading path, and driven through the API with the
real `openai` client; the request mapping and the speed switches on their own."""

from __future__ import annotations

import io
import time

import numpy as np
import openai
import pytest

pytest.importorskip("diffusers")

from conftest import Server, make_client  # noqa: E402

from vitascope import media  # noqa: E402
from vitascope.models.base import GenerationRequest, ModelError  # noqa: E402
from vitascope.models.open_weights import mapping  # noqa: E402
from vitascope.models.open_weights.backend import DiffusersModel  # noqa: E402
from vitascope.models.open_weights.build import build, load_config, save_tiny  # noqa: E402
from vitascope.models.open_weights.specs import BY_NAME, OPEN_MODELS  # noqa: E402
from vitascope.models.open_weights.speed import GB, CFGBatcher, choose_offload  # noqa: E402

SORA_SIZES = [(720, 1280), (1280, 720), (1024, 1792), (1792, 1024)]
NAMES = [m.name for m in OPEN_MODELS]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    for name in NAMES:
        save_tiny(name, d / name)
    return d


def nothing(f: float) -> None:
    pass


# --- the request mapping ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_sora_size_maps_to_a_native_size_of_the_same_orientation(name):
    spec = BY_NAME[name]
    for w, h in SORA_SIZES:
        nw, nh = mapping.nearest_size(spec, w, h)
        assert (nw > nh) == (w > h)
        assert nw % spec.size_multiple == 0 and nh % spec.size_multiple == 0


def test_a_size_far_from_every_native_aspect_is_refused_naming_the_sizes():
    spec = BY_NAME["wan2.1-t2v-1.3b"]
    with pytest.raises(ModelError) as e:
        mapping.nearest_size(spec, 2048, 256)
    assert e.value.param == "size" and "832x480" in e.value.message
    assert mapping.nearest_size(spec, 1000, 1000) == (624, 624)


def test_seconds_become_frames_on_the_vae_grid():
    wan, ltx = BY_NAME["wan2.1-t2v-1.3b"], BY_NAME["ltx-video"]
    assert mapping.frames_for(wan, 5) == 81  # Wan's own default: 81 frames at 16 fps
    assert mapping.frames_for(wan, 4) == 65
    assert mapping.frames_for(ltx, 4) == 97
    assert all((mapping.frames_for(ltx, s) - 1) % 8 == 0 for s in (0.1, 1, 4, 8, 12))
    with pytest.raises(ModelError):
        mapping.frames_for(wan, 0)


def test_presets_follow_sora_names():
    spec = BY_NAME["wan2.1-t2v-14b"]
    fast = mapping.plan(spec, width=1280, height=720, seconds=4, seed=1, requested_model="sora-2")
    pro = mapping.plan(spec, width=1280, height=720, seconds=4, seed=1, requested_model="sora-2-pro")
    assert (fast.preset, pro.preset) == ("fast", "quality")
    assert (fast.width, fast.height) == (832, 480) and (pro.width, pro.height) == (1280, 720)
    assert pro.steps > fast.steps
    assert fast.negative_prompt.startswith("bright tones")


def test_memory_mode_follows_free_memory():
    assert choose_offload("auto", total_bytes=30 * GB, largest_bytes=20 * GB, free_bytes=78 * GB) == "none"
    assert choose_offload("auto", total_bytes=30 * GB, largest_bytes=10 * GB, free_bytes=20 * GB) == "model"
    assert choose_offload("auto", total_bytes=30 * GB, largest_bytes=20 * GB, free_bytes=20 * GB) == "group"
    assert choose_offload("group", total_bytes=1, largest_bytes=1, free_bytes=80 * GB) == "group"
    with pytest.raises(ValueError):
        choose_offload("fast", total_bytes=1, largest_bytes=1, free_bytes=1)


def test_every_model_has_a_tiny_and_a_full_configuration():
    for name in NAMES:
        tiny, full = load_config(name, "tiny"), load_config(name, "full")
        assert tiny["pipeline"] == full["pipeline"] and set(tiny["components"]) == set(full["components"])


# --- the backend, every pipeline ------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_each_model_makes_every_kind_of_clip_it_declares(models_dir, name):
    m = DiffusersModel(BY_NAME[name], models_dir)
    assert m.available()[0]
    caps = m.capabilities
    first = None if caps.text_to_video else np.full((90, 160, 3), 128, np.uint8)  # image-to-video models need a first frame
    req = GenerationRequest(prompt="two red balls bouncing", seconds=2, width=1280, height=720, seed=3, preset="sora-2", image=first)
    seen = []
    r = m.generate(req, seen.append)
    assert r.frames.dtype == np.uint8 and r.frames.shape[1:] == (32, 64, 3)  # the tiny model's native landscape size
    assert len(r.frames) == mapping.frames_for(m.spec, 2) == 17
    assert seen and seen[-1] == pytest.approx(1.0)
    assert abs(len(r.audio) / r.sample_rate - len(r.frames) / r.fps) < 0.2 or caps.audio
    if caps.audio:
        assert r.info["audio"] == "generated" and np.abs(r.audio).max() > 0
    else:
        assert not np.any(r.audio) and r.info["audio"].startswith("none")
    assert np.array_equal(m.generate(req, nothing).frames, r.frames)  # a seed reproduces a clip
    if caps.image_to_video:
        img = np.zeros((90, 160, 3), np.uint8)
        r_i = m.generate(GenerationRequest(prompt="a ball", seconds=2, width=1280, height=720, seed=3, image=img), nothing)
        assert r_i.frames.shape == r.frames.shape
    if caps.extension:
        ext = GenerationRequest(prompt="more", seconds=1, width=1280, height=720, seed=4, mode="extend", video=r.frames, video_fps=r.fps, audio=r.audio, audio_rate=r.sample_rate)
        r_e = m.generate(ext, nothing)
        assert len(r_e.frames) == len(r.frames) + 8 and np.array_equal(r_e.frames[: len(r.frames)], r.frames)
    if caps.remix:
        mix = GenerationRequest(prompt="blue", seconds=2, width=1280, height=720, seed=4, mode="remix", strength=0.5, video=r.frames, video_fps=r.fps)
        assert m.generate(mix, nothing).frames.shape == r.frames.shape


@pytest.mark.parametrize("name", ["wan2.1-t2v-1.3b", "ltx-video"])
def test_a_batch_gives_each_job_the_clip_it_would_get_alone(models_dir, name):
    m = DiffusersModel(BY_NAME[name], models_dir)
    reqs = [GenerationRequest(prompt=p, seconds=2, width=1280, height=720, seed=s) for p, s in [("a red ball", 1), ("two cats", 5), ("snow", 9)]]
    assert len({m.batch_key(r) for r in reqs}) == 1
    batch = m.generate_batch(reqs, [nothing] * 3)
    for r, b in zip(reqs, batch):
        alone = m.generate(r, nothing)
        assert b.info["batch"] == 3
        assert np.abs(alone.frames.astype(int) - b.frames.astype(int)).max() <= 2


def test_cfg_batching_matches_two_passes(models_dir):
    import torch

    pipe = build(load_config("wan2.1-t2v-1.3b"))
    pipe.set_progress_bar_config(disable=True)
    kw = dict(prompt="a red ball", negative_prompt="blurry", height=32, width=64, num_frames=9, num_inference_steps=3, output_type="np")
    two = pipe(**kw, generator=torch.Generator().manual_seed(0)).frames
    batcher = CFGBatcher(pipe.transformer).install()
    pe, ne = pipe.encode_prompt(kw.pop("prompt"), kw.pop("negative_prompt"), max_sequence_length=512, device=torch.device("cpu"))
    batcher.set_embeddings(pe, ne)
    one = pipe(**kw, prompt_embeds=pe, negative_prompt_embeds=ne, generator=torch.Generator().manual_seed(0)).frames
    assert batcher.batched_calls == 3
    assert np.abs(one - two).max() < 5e-3  # batched matmuls round differently, nothing more


def test_step_cache_runs_and_saves_transformer_work(models_dir):
    from vitascope.models.open_weights.speed import Speed

    m = DiffusersModel(BY_NAME["wan2.1-t2v-1.3b"], models_dir, Speed(step_cache=0.9, compile=False))
    r = m.generate(GenerationRequest(prompt="a red ball", seconds=2, width=1280, height=720, seed=1, preset="sora-2-pro"), nothing)
    assert m.applied["step_cache"] == 0.9 and len(r.frames) == 17


# --- through the API ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_server(tmp_path_factory, models_dir):
    home = tmp_path_factory.mktemp("open-home")
    srv = Server(home, extra_env={"VITASCOPE_MODELS_DIR": str(models_dir), "VITASCOPE_BATCH_WAIT_S": "1.0"})
    srv.start()
    yield srv
    srv.stop()


def wait_done(client: openai.OpenAI, vid: str, timeout: float = 120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = client.videos.retrieve(vid)
        if v.status in ("completed", "failed"):
            return v
        time.sleep(0.2)
    raise TimeoutError(vid)


@pytest.mark.parametrize("name", NAMES)
def test_api_serves_each_open_model_at_the_size_and_length_asked(open_server, name):
    client = make_client(open_server, "open")
    kw = {}
    if not BY_NAME[name].capabilities.text_to_video:
        with pytest.raises(openai.BadRequestError):  # text alone is refused before anything is queued
            client.videos.create(model=name, prompt="a red ball on grass", seconds="4", size="1280x720")
        buf = io.BytesIO()
        from PIL import Image

        Image.new("RGB", (320, 180), (40, 160, 40)).save(buf, "PNG")
        kw["input_reference"] = ("first.png", buf.getvalue(), "image/png")
    v = wait_done(client, client.videos.create(model=name, prompt="a red ball on grass", seconds="4", size="1280x720", **kw).id)
    assert v.status == "completed", v.error
    assert v.model == name and v.size == "1280x720" and v.seconds == "4"
    data = client.videos.download_content(v.id).read()
    path = open_server.home / f"{name}.mp4"
    path.write_bytes(data)
    info = media.probe(path)
    assert (info["width"], info["height"]) == (1280, 720)
    assert abs(info["duration"] - 4.0) < 0.5
    assert info["audio_codec"] == "aac"  # a track always; silent for models without sound
    d = media.decode(path)
    loud = float(np.abs(d.audio).max()) if d.audio is not None and len(d.audio) else 0.0
    assert (loud > 0) == BY_NAME[name].capabilities.audio


def test_api_extends_with_an_open_model(open_server):
    client = make_client(open_server, "open")
    src = wait_done(client, client.videos.create(model="wan2.2-ti2v-5b", prompt="a ball", seconds="4", size="1280x720").id)
    r = client.post("/videos/extensions", body={"video": {"id": src.id}, "prompt": "it keeps rolling", "seconds": "4"}, cast_to=openai.types.Video)
    v = wait_done(client, r.id)
    assert v.status == "completed", v.error
    path = open_server.home / "ext.mp4"
    path.write_bytes(client.videos.download_content(v.id).read())
    assert abs(media.probe(path)["duration"] - 8.0) < 0.6


def test_api_image_to_video_with_an_open_model(open_server):
    client = make_client(open_server, "open")
    buf = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (300, 200), (200, 30, 30)).save(buf, "PNG")
    v = client.videos.create(model="ltx-video", prompt="a red wall", seconds="4", size="1280x720", input_reference=("red.png", buf.getvalue(), "image/png"))
    assert wait_done(client, v.id).status == "completed"


def test_concurrent_jobs_of_one_model_share_a_denoising_run(open_server):
    client = make_client(open_server, "open")
    ids = [client.videos.create(model="wan2.1-t2v-1.3b", prompt=f"ball {i}", seconds="4", size="720x1280").id for i in range(4)]
    done = [wait_done(client, i) for i in ids]
    assert all(v.status == "completed" for v in done)
    log = (open_server.home / "server.log").read_text()
    assert f"jobs {', '.join(ids)} ran as one batch of 4" in log
    assert "running them one at a time" not in log


def test_bad_open_model_requests_are_clear_400s(open_server, tmp_path):
    client = make_client(open_server, "open")
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(model="wan2.1-t2v-1.3b", prompt="x", size="1600x200")
    assert e.value.body["param"] == "size" and "none is within" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(model="wan2.1-t2v-1.3b", prompt="x", input_reference=("a.png", b"\x89PNG", "image/png"))
    assert e.value.body["param"] == "input_reference"


def test_absent_weights_are_a_400_naming_the_directory(tmp_path):
    empty = tmp_path / "no-models"
    empty.mkdir()
    srv = Server(tmp_path, extra_env={"VITASCOPE_MODELS_DIR": str(empty)})
    srv.start()
    try:
        client = make_client(srv, "nobody")
        with pytest.raises(openai.BadRequestError) as e:
            client.videos.create(model="ltx-2", prompt="a drum solo")
        body = e.value.body
        assert body["param"] == "model" and body["code"] == "model_not_available"
        assert str(empty / "ltx-2") in body["message"] and "huggingface-cli download Lightricks/LTX-2" in body["message"]
        listed = {m.id: m for m in client.models.list()}
        assert listed["ltx-2"].model_extra["available"] is False
    finally:
        srv.stop()


def test_out_of_memory_fails_the_job_clearly_and_the_model_lives_on(models_dir):
    import torch

    m = DiffusersModel(BY_NAME["wan2.1-t2v-1.3b"], models_dir)
    req = GenerationRequest(prompt="a red ball", seconds=2, width=1280, height=720, seed=1)

    def exhausted(f: float) -> None:  # raised where the allocator raises it: inside the denoising loop
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with pytest.raises(ModelError) as e:
        m.generate(req, exhausted)
    assert e.value.code == "gpu_out_of_memory" and "64x32, 17 frames" in e.value.message and "VITASCOPE_GPU_OFFLOAD" in e.value.message
    assert len(m.generate(req, nothing).frames) == 17


def test_weights_in_the_hugging_face_cache_are_found(tmp_path, monkeypatch, models_dir):
    import shutil

    from vitascope.models.open_weights.backend import locate

    spec = BY_NAME["ltx-video"]
    cache = tmp_path / "hub"
    repo = cache / ("models--" + spec.repo_id.replace("/", "--"))
    commit = "0" * 40
    shutil.copytree(models_dir / spec.name, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    path, where = locate(spec, tmp_path / "empty")
    assert path == repo / "snapshots" / commit, where
    m = DiffusersModel(spec, tmp_path / "empty")
    assert len(m.generate(GenerationRequest(prompt="a ball", seconds=1, width=1280, height=720, seed=0), nothing).frames) == 9


def test_an_extension_keeps_the_source_sound(models_dir):
    m = DiffusersModel(BY_NAME["wan2.2-ti2v-5b"], models_dir)  # a silent model extending a clip that has sound
    frames = np.full((16, 32, 64, 3), 100, np.uint8)
    tone = np.sin(np.arange(32000) / 16000 * 2 * np.pi * 440).astype(np.float32)  # 2 s at 16 kHz
    r = m.generate(GenerationRequest(prompt="more", seconds=1, width=1280, height=720, seed=0, mode="extend", video=frames, video_fps=8, audio=tone, audio_rate=16000), nothing)
    assert len(r.frames) == 24
    assert abs(len(r.audio) / r.sample_rate - 3.0) < 0.01
    head, tail = r.audio[: 2 * r.sample_rate], r.audio[2 * r.sample_rate :]
    assert np.abs(head).max() > 0.9 and not np.any(tail)  # the tone carried over at the new rate, then silence
