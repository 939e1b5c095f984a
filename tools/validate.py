"""Choose between weights files (checkpoints, settings) on validation prompts: held-out words, as
`vitascope eval` uses, but other scenes (seeds from VALIDATION_SEED_BASE), so that the eval set
stays unseen by every choice made.

    python tools/validate.py src/vitascope/models/weights/world-sl.safetensors runs/x/ema.safetensors --n 36
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vitascope.eval import VALIDATION_SEED_BASE, backend_calls, evaluate, table  # noqa: E402
from vitascope.models import world_parse, world_plan  # noqa: E402
from vitascope.models.world import WorldModel  # noqa: E402


def first_frame_calls(model):
    """generate(prompt, seed, w, h, seconds) for `evaluate` that hands the model the simulator's
    first frame of the scene the prompt describes (at 64 pixels on the short side)."""
    from vitascope.models.base import GenerationRequest
    from vitascope.world import sample_scene, simulate

    def generate(prompt, seed, w, h, seconds):
        scene = sample_scene(seed, aspect=w / h)  # as eval_cases makes it
        k = 64 / min(w, h)
        first = simulate(seed, height=round(h * k) // 2 * 2, width=round(w * k) // 2 * 2, seconds=1 / 12, scene=scene).frames[0]
        r = model.generate(GenerationRequest(prompt=prompt, seconds=seconds, width=w, height=h, seed=seed, image=first), lambda f: None)
        return r.frames, r.fps, r.audio, r.sample_rate

    return generate


def oracle_layout_calls(model):
    """generate(prompt, seed, w, h, seconds) for `evaluate` that gives a layout-guided model the
    true layout of the scene the prompt describes instead of the planner's: how well the network
    draws what a layout places, apart from planning it."""
    import numpy as np

    from vitascope.models import world as world_mod
    from vitascope.models.base import GenerationRequest
    from vitascope.world import layout, sample_scene

    scene = {}

    def true_layout(tokens, mask, plan, ctx_n, n_new, aspect, H, W, gen, labels=None, rest=False):  # the true layout as it is
        start = (len(plan) - ctx_n) / world_mod.FPS
        feat = layout.features(scene["s"], start, world_mod.WINDOW, world_mod.FPS, aspect=aspect)
        return (*model.layout_inputs(feat, H, W), np.concatenate([plan, feat[ctx_n : ctx_n + n_new]]))

    model._layout = true_layout
    model.planner = model.planner or object()  # any planner: the true layout replaces what it would plan

    def generate(prompt, seed, w, h, seconds):
        scene["s"] = sample_scene(seed, aspect=w / h)  # as eval_cases makes it
        r = model.generate(GenerationRequest(prompt=prompt, seconds=seconds, width=w, height=h, seed=seed), lambda f: None)
        return r.frames, r.fps, r.audio, r.sample_rate

    return generate


SOUNDS = ("foley", "plan", "network")


def use_sound(model, sound: str) -> None:
    """A planned clip's sound (one of SOUNDS): heard by the Foley model and timed to the contacts
    drawn (what generate does), heard from the plan alone, or the network's own."""
    if sound == "network":
        model.foley = None
    model.foley_timing = sound == "foley"


def add_pipeline_switches(ap: argparse.ArgumentParser) -> None:
    """Switches that turn off later parts of the pipeline (here and in sync_report.py): the lexicon
    and sharpened attacks (session 19), objects held where they landed (session 20), the camera
    moved over the drawn background and drawn contacts heard (session 21); weather guidance's
    weight (session 24); the contacts the finished frames show heard and snow that falls (session 25)."""
    ap.add_argument("--no-sharpen", action="store_true", help="hear WorldFoley's attacks as it writes them, not each taken in one step (world_foley.sharpen)")
    ap.add_argument("--no-lexicon", action="store_true", help="read prompts as given, without the lexicon's rewriting of unknown words (models/world_lexicon.py)")
    ap.add_argument("--no-rest", action="store_true", help="let objects that have landed sink as planned, not held where they landed (layout.rest)")
    ap.add_argument("--no-fill", action="store_true", help="hear only the planned contacts, not also those the frames show that the plan lacks (world_foley.fill)")
    ap.add_argument("--no-seen", action="store_true", help="hear the planned objects' contacts only, not also every contact an object is seen making in the finished frames (world_foley.strike_seen)")
    ap.add_argument("--no-snow-fall", action="store_true", help="snow as the network drew it, a still speckle, not falling as the world's flakes do (camera.fall)")
    ap.add_argument("--no-rain-fall", action="store_true", help="rain as the network drew it, specks scattered afresh each frame, not falling as the world's rain does (camera.fall)")
    ap.add_argument("--no-apart", action="store_true", help="objects of one colour drawn where planned, touching or not, not moved apart (layout.apart)")
    ap.add_argument("--steady-spins", action="store_true", help="spins turned at the plan's mean rate (layout.steady_turn), not as planned")
    ap.add_argument("--no-hold", action="store_true", help="a still camera's frames as the network drew them, not its background held still behind the objects (world/camera.py: move(hold=True))")
    ap.add_argument("--no-camera", action="store_true", help="leave the frames as the network drew them, for a still camera, whatever camera the prompt asks for (world/camera.py)")
    ap.add_argument("--weather-guidance", type=float, default=None, help="how far the detail head is pushed from its drawing of the same scene with the weather clear, where the settings say rain, away from the planned objects (default: the model's; 0: off)")


def pipeline_switches(args: argparse.Namespace) -> dict:
    """WorldModel's keyword arguments for the switches `add_pipeline_switches` adds."""
    return {**({"lexicon": None} if args.no_lexicon else {}), **({"foley_sharp": False} if args.no_sharpen else {}), **({"plan_rest": False} if args.no_rest else {}), **({"move_camera": False} if args.no_camera else {}), **({"hold_camera": False} if args.no_hold else {}), **({"steady_spins": True} if args.steady_spins else {}), **({"foley_fill": False} if args.no_fill else {}), **({"foley_seen": False} if args.no_seen else {}), **({"snow_fall": False} if args.no_snow_fall else {}), **({"rain_fall": False} if args.no_rain_fall else {}), **({"keep_apart": False} if args.no_apart else {}), **({"weather_guidance": args.weather_guidance} if args.weather_guidance is not None else {})}


def reword_attrs(spec: str) -> tuple[str, ...]:
    """--reword's attributes."""
    named = {"settings": tuple(world_parse.SETTINGS), "all": world_parse.REWORD_ATTRS, "none": ()}
    return named[spec] if spec in named else tuple(spec.split(","))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--n", type=int, default=36, help="validation prompts")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--steps", type=int, default=None, help="sampling steps per window (default: the model's)")
    ap.add_argument("--interval", type=float, nargs=2, default=(0.0, 1.0), metavar=("LO", "HI"), help="flow times where guidance applies")
    ap.add_argument("--shift", type=float, default=2.0, help="time grid shift towards the noise")
    ap.add_argument("--words", choices=("heldout", "train"), default="heldout", help="phrase the validation scenes in held-out words (as eval does) or in training words")
    ap.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto", help="network precision (auto: bf16 where the CPU has it)")
    ap.add_argument("--eta", type=float, default=0.0, help="share of fresh noise per sampling step")
    ap.add_argument("--first-frame", action="store_true", help="give the model the simulator's first frame of each scene (image-to-video): how well it animates a scene drawn right, apart from drawing it")
    ap.add_argument("--no-read-layout", action="store_true", help="animate images (--first-frame) and extend clips unplanned, as before session 13, instead of planning on from the layout read from their frames")
    ap.add_argument("--layout", choices=("plan", "true", "none"), default="plan", help="layout-guided models: the planner's layout (what generate does), the scene's true layout, or none")
    ap.add_argument("--planner", default=None, help="layout-guided models: planner weights (default: world-plan.safetensors beside the weights)")
    ap.add_argument("--plan-guidance", type=float, default=2.0)
    ap.add_argument("--plan-candidates", type=int, default=None, help="layouts the planner samples for a clip's first window, of which the first that shows the most of the motions asked for is drawn (default: the model's)")
    ap.add_argument("--plan-smooth", type=int, default=None, help="frames of the moving average over planned places (default: the model's)")
    ap.add_argument("--plan-settle", type=float, default=None, help="frame heights within which planned heights are held still (default: the model's, 0.006; 0: off)")
    ap.add_argument("--map-supersample", type=int, default=None, help="draw the layout maps' silhouettes at this many times the size, averaged down (default: the model's)")
    ap.add_argument("--labels-only", action="store_true", help="a planner with labels reads the parser's labels alone, not its rewritten prompt")
    ap.add_argument("--parse-for", choices=("plan", "all"), default="plan", help="who reads the parser's rewritten prompt: the planner, or the planner and the network")
    ap.add_argument("--settings-confidence", type=float, default=None, help="networks that read the scene's settings: the parser's probability from which a setting is given (default: the model's; 0: all, above 1: none)")
    ap.add_argument("--no-network-words", action="store_true", help="networks that read the scene's settings: give them the settings and layout alone, not the prompt's words")
    ap.add_argument("--parser", default=None, help="prompt parser weights (a+b: read together), or 'none' to read prompts as given (default: world-parse.safetensors beside the weights)")
    ap.add_argument("--reword", default="settings", help="attributes whose words the network reads as the parser's training phrase: 'settings' (sky, ground, weather, camera), 'all', 'none', or names joined by commas")
    ap.add_argument("--reword-to", choices=world_parse.REWORD_TO, default="first", help="what a reworded span becomes: its value's first training phrase (\"at sunset\"), or the training phrase nearest it (sessions 16-28)")
    ap.add_argument("--reword-from", type=float, default=None, help="reword every setting the parser reads with at least this probability (default: the probabilities fitted beside the parsers, see tools/fit_ensemble.py)")
    ap.add_argument("--offset", type=int, default=0, help="start at this validation scene (a second set of prompts: --offset 36)")
    ap.add_argument("--sound", choices=SOUNDS, default="foley", help="planned clips' sound: heard from their layout by the Foley model beside the weights and timed to the contacts drawn (what generate does), heard from the plan alone, or the network's own")
    add_pipeline_switches(ap)
    ap.add_argument("--keep", default=None, help="keep each measured clip under this folder, as <weights name>/<seed>.mp4")
    args = ap.parse_args()
    rows = {}
    for w in args.weights:
        t0 = time.time()
        kw = {"plan_guidance": args.plan_guidance}
        if args.planner:
            kw["planner"] = world_plan.load(args.planner)
        kw["parse_for"] = args.parse_for
        kw["plan_words"] = not args.labels_only
        kw["read_layout"] = not args.no_read_layout
        if args.plan_candidates is not None:
            kw["plan_candidates"] = args.plan_candidates
        if args.plan_smooth is not None:
            kw["plan_smooth"] = args.plan_smooth
        if args.map_supersample is not None:
            kw["map_supersample"] = args.map_supersample
        if args.plan_settle is not None:
            kw["plan_settle"] = args.plan_settle
        kw["network_words"] = not args.no_network_words
        kw["reword"] = reword_attrs(args.reword)
        kw["reword_to"] = args.reword_to
        if args.settings_confidence is not None:
            kw["settings_confidence"] = args.settings_confidence
        if args.parser:
            kw["parser"] = None if args.parser == "none" else world_parse.load_all(args.parser)
        if args.layout == "none":
            kw["planner"] = None
        kw.update(pipeline_switches(args))
        if args.steps is not None:
            kw["steps"] = args.steps
        model = WorldModel.from_file("validate", Path(w), guidance=args.guidance, guidance_interval=tuple(args.interval), shift=args.shift, eta=args.eta, bf16={"auto": None, "bf16": True, "fp32": False}[args.precision], **kw)
        use_sound(model, args.sound)
        if args.reword_from is not None and model.parser is not None:
            model.parser.reword_from = {k: args.reword_from for k in world_parse.SETTINGS}
        if args.first_frame:
            generate = first_frame_calls(model)
        elif args.layout == "true":
            generate = oracle_layout_calls(model)
        else:
            generate = backend_calls(model)[0]
        keep = Path(args.keep) / Path(w).stem if args.keep else None
        rows[w] = evaluate(generate, n=args.n, seed_base=VALIDATION_SEED_BASE + args.offset, split=args.words, keep=keep)
        given = ", simulator's first frame given" if args.first_frame else ""
        if model.net.cfg.layout:
            given += f", layout: {args.layout if model.planner is not None else 'none'}"
        given += f", parser: {args.parser or 'beside'} for {args.parse_for}{', planner on labels alone' if args.labels_only else ''}" if model.parser is not None else ""
        given += f", reworded: {','.join(model.reword) or 'none'} from {getattr(model.parser, 'reword_from', None) or world_parse.REWORD_FROM}" if model.parser is not None else ""
        given += f", validation scenes from {args.offset}" if args.offset else ""
        given += f", sound: {args.sound}" if model.planner is not None else ""
        given += f", settings from a parser probability of {model.settings_confidence}{'' if model.network_words else ', without the words'}" if model.net.cfg.settings and model.parser is not None else ""
        print(f"{w} (guidance {args.guidance} on {args.interval}, {model.steps} steps, shift {args.shift}, eta {args.eta}, bf16 {model.bf16}, {args.words} words{given}): {100 * rows[w].overall:.1f}% of attributes, sync {100 * rows[w].sync:.1f}% ({time.time() - t0:.0f} s)", flush=True)
    print(table({Path(w).parent.name + "/" + Path(w).name: score for w, score in rows.items()}))


if __name__ == "__main__":
    main()
