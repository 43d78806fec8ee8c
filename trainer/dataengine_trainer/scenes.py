"""Seeded road-scene generator: camera frames with ground-truth boxes, and named shift scenarios.

Every frame is a pure function of (seed, scenario, camera, frame_index), so the same call always
draws the same pixels and boxes. Frames of one camera form sequences: a sequence keeps its
objects and moves them a little per frame, as a real camera sees traffic pass.

Scenarios change what a camera sees, the way the world changes under a deployed model:
  clear       in-distribution daylight
  night       dark frames, headlight glare
  fog         washed-out, blurred frames
  new_camera  colour cast, sensor noise, a narrower field of view (objects appear larger)
  class_mix   the same look, but cyclists dominate and vehicles are rare
  rare        the same look, but a cyclist appears in about 1 sequence of 1,000 (the hard case
              of active learning: the frames that matter are 0.1% of the stream)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ["vehicle", "pedestrian", "cyclist", "sign"]
SCENARIOS = ["clear", "night", "fog", "new_camera", "class_mix", "rare"]
WIDTH, HEIGHT = 320, 240
SEQUENCE_LENGTH = 16
HORIZON = 92  # y of the horizon in a clear camera

CLASS_MIX = {
    "default": [0.42, 0.26, 0.16, 0.16],
    "class_mix": [0.10, 0.18, 0.60, 0.12],
    # No cyclists, except in the rare sequences (RARE_SEQUENCE_SHARE) that have one.
    "rare": [0.50, 0.31, 0.0, 0.19],
}
RARE_SEQUENCE_SHARE = 0.001

# Minimum visible share of an object for it to count as ground truth (the rest is occluded).
MIN_VISIBLE = 0.35


@dataclass
class Box:
    category: str
    x1: float
    y1: float
    x2: float
    y2: float
    # The object's identity across the frames of its sequence ("<sequence_id>/<n>"): the ground
    # truth of tracking.
    track_id: str = ""

    @property
    def w(self) -> float:
        return self.x2 - self.x1

    @property
    def h(self) -> float:
        return self.y2 - self.y1


@dataclass
class Frame:
    image: Image.Image
    boxes: list[Box]
    camera_id: str
    scenario: str
    sequence_id: str
    frame_index: int
    meta: dict = field(default_factory=dict)


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by a stable hash of its parts (Python's hash() is salted per process)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass
class _Object:
    category: str
    # position of the object's foot point at frame 0 of its sequence, and its speed (px/frame)
    x: float
    y: float
    vx: float
    scale: float
    colour: tuple[int, int, int]
    variant: int


def _camera_traits(seed: int, camera_id: str, scenario: str) -> dict:
    r = _rng(seed, "camera", camera_id)
    traits = {
        "horizon": HORIZON + int(r.integers(-10, 11)),
        "road_tone": int(r.integers(85, 120)),
        "sky": tuple(int(v) for v in r.integers([120, 160, 200], [160, 200, 240])),
        "grass": tuple(int(v) for v in r.integers([60, 110, 40], [90, 150, 70])),
        "zoom": 1.0,
    }
    if scenario == "new_camera":
        traits["zoom"] = 1.35
        traits["horizon"] -= 18
    return traits


def _sequence_objects(seed: int, scenario: str, camera_id: str, sequence: int, traits: dict) -> list[_Object]:
    r = _rng(seed, scenario, camera_id, "sequence", sequence)
    mix = CLASS_MIX[scenario if scenario in CLASS_MIX else "default"]
    count = int(r.integers(2, 8))
    horizon = traits["horizon"]
    # Drawn from a stream of its own, so the rest of the sequence is the same with or without it.
    rare = scenario == "rare" and _rng(seed, camera_id, "rare", sequence).random() < RARE_SEQUENCE_SHARE
    objects = []
    for i in range(count):
        category = CLASSES[int(r.choice(4, p=mix))]
        if rare and i == count - 1:
            category = "cyclist"
        y = float(r.uniform(horizon + 18, HEIGHT + 10))
        # Perspective: objects nearer the bottom of the frame are larger.
        depth = (y - horizon) / (HEIGHT - horizon)
        scale = (0.35 + 1.25 * depth) * traits["zoom"]
        if category == "sign":
            x = float(r.choice([r.uniform(8, 90), r.uniform(230, 312)]))
        else:
            x = float(r.uniform(20, WIDTH - 20))
        speed = {"vehicle": 3.0, "pedestrian": 0.8, "cyclist": 1.8, "sign": 0.0}[category]
        vx = float(r.uniform(-1, 1) * speed * scale)
        colour = tuple(int(v) for v in r.integers(30, 240, size=3))
        objects.append(_Object(category, x, y, vx, scale, colour, int(r.integers(0, 3))))
    return objects


def _draw_object(draw: ImageDraw.ImageDraw, obj: _Object, x: float, y: float, fill_override: int | None = None) -> Box:
    """Draws one object with its foot point at (x, y); returns its full (unoccluded) box."""
    s = obj.scale
    f = lambda c: fill_override if fill_override is not None else c  # noqa: E731 - mask drawing
    if obj.category == "vehicle":
        w, h = 64 * s * (1.0 + 0.2 * obj.variant), 34 * s
        x1, y1 = x - w / 2, y - h
        draw.rectangle([x1, y1 + h * 0.35, x1 + w, y - h * 0.15], fill=f(obj.colour))
        draw.rectangle([x1 + w * 0.18, y1, x1 + w * 0.8, y1 + h * 0.4], fill=f(tuple(c // 2 for c in obj.colour)))
        draw.rectangle([x1 + w * 0.24, y1 + h * 0.06, x1 + w * 0.74, y1 + h * 0.34], fill=f((150, 190, 210)))
        r = h * 0.18
        for wx in (x1 + w * 0.22, x1 + w * 0.78):
            draw.ellipse([wx - r, y - 2 * r, wx + r, y], fill=f((20, 20, 20)))
        return Box("vehicle", x1, y1, x1 + w, y)
    if obj.category == "pedestrian":
        w, h = 12 * s, 36 * s
        x1, y1 = x - w / 2, y - h
        head = w * 0.42
        draw.ellipse([x - head, y1, x + head, y1 + 2 * head], fill=f((224, 172, 140)))
        draw.rectangle([x1, y1 + 2 * head, x1 + w, y1 + h * 0.62], fill=f(obj.colour))
        leg = w * 0.32
        draw.rectangle([x1 + w * 0.1, y1 + h * 0.62, x1 + w * 0.1 + leg, y], fill=f((40, 40, 70)))
        draw.rectangle([x1 + w * 0.9 - leg, y1 + h * 0.62, x1 + w * 0.9, y], fill=f((40, 40, 70)))
        return Box("pedestrian", x1, y1, x1 + w, y)
    if obj.category == "cyclist":
        w, h = 34 * s, 38 * s
        x1, y1 = x - w / 2, y - h
        r = w * 0.24
        for wx in (x1 + r, x1 + w - r):
            draw.ellipse([wx - r, y - 2 * r, wx + r, y], outline=f((15, 15, 15)), width=max(1, int(2.5 * s)))
        draw.line([x1 + r, y - r, x, y - 2.2 * r, x1 + w - r, y - r], fill=f((200, 200, 40)), width=max(1, int(2 * s)))
        draw.rectangle([x - w * 0.12, y1 + h * 0.18, x + w * 0.12, y - 2.1 * r], fill=f(obj.colour))
        draw.ellipse([x - w * 0.12, y1, x + w * 0.12, y1 + h * 0.2], fill=f((224, 172, 140)))
        return Box("cyclist", x1, y1, x1 + w, y)
    # sign: a pole with a coloured plate on top
    w = 16 * s
    h = 40 * s
    x1, y1 = x - w / 2, y - h
    draw.rectangle([x - w * 0.08, y1 + w, x + w * 0.08, y], fill=f((110, 110, 110)))
    plate = [(200, 30, 30), (240, 200, 20), (30, 70, 200)][obj.variant]
    if obj.variant == 1:
        draw.polygon([(x, y1), (x1 + w, y1 + w), (x1, y1 + w)], fill=f(plate))
    else:
        draw.ellipse([x1, y1, x1 + w, y1 + w], fill=f(plate), outline=f((250, 250, 250)))
    return Box("sign", x1, y1, x1 + w, y)


def _background(traits: dict) -> Image.Image:
    img = Image.new("RGB", (WIDTH, HEIGHT), traits["sky"])
    d = ImageDraw.Draw(img)
    hz = traits["horizon"]
    d.rectangle([0, hz, WIDTH, HEIGHT], fill=traits["grass"])
    t = traits["road_tone"]
    d.polygon(
        [(WIDTH * 0.42, hz), (WIDTH * 0.58, hz), (WIDTH * 1.15, HEIGHT), (-WIDTH * 0.15, HEIGHT)], fill=(t, t, t + 4)
    )
    for i in range(6):
        y0 = hz + (HEIGHT - hz) * (i / 6) ** 1.6
        y1 = hz + (HEIGHT - hz) * ((i + 0.5) / 6) ** 1.6
        d.polygon(
            [(WIDTH / 2 - 1, y0), (WIDTH / 2 + 1, y0), (WIDTH / 2 + 3, y1), (WIDTH / 2 - 3, y1)], fill=(230, 230, 230)
        )
    return img


def _apply_scenario(img: Image.Image, scenario: str, r: np.random.Generator, boxes: list[Box]) -> Image.Image:
    if scenario == "night":
        arr = np.asarray(img, dtype=np.float32) * 0.28
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
        for b in boxes:
            if b.category != "vehicle":
                continue
            # Headlight glare: two bright radial blooms at the vehicle's front.
            for hx in (b.x1 + b.w * 0.15, b.x2 - b.w * 0.15):
                hy = b.y2 - b.h * 0.3
                rad = max(2.5, b.w * 0.1)
                glow = np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * rad**2))
                arr += glow[..., None] * np.array([255, 240, 190], dtype=np.float32) * 0.9
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if scenario == "fog":
        arr = np.asarray(img.filter(ImageFilter.GaussianBlur(1.6)), dtype=np.float32)
        yy = np.mgrid[0:HEIGHT, 0:WIDTH][0]
        density = np.clip(0.72 - 0.35 * (yy / HEIGHT), 0.3, 0.72)[..., None]
        arr = arr * (1 - density) + 205 * density
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if scenario == "new_camera":
        arr = np.asarray(img, dtype=np.float32) * np.array([1.12, 0.95, 0.7], dtype=np.float32) + 14
        arr += r.normal(0, 11, size=arr.shape).astype(np.float32)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img


def render_frame(seed: int, scenario: str, camera_id: str, frame_index: int) -> Frame:
    """The frame a camera sees at `frame_index` under `scenario`, with its ground truth."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    traits = _camera_traits(seed, camera_id, scenario)
    sequence, step = divmod(frame_index, SEQUENCE_LENGTH)
    sequence_id = f"{camera_id}/{scenario}/{sequence}"
    objects = _sequence_objects(seed, scenario, camera_id, sequence, traits)
    img = _background(traits)
    draw = ImageDraw.Draw(img)
    mask = Image.new("I", (WIDTH, HEIGHT), 0)
    mask_draw = ImageDraw.Draw(mask)
    # Far objects first, so nearer ones occlude them; the id mask tells what stays visible.
    placed = []
    depth_order = sorted(range(len(objects)), key=lambda j: objects[j].y)
    for obj in (objects[j] for j in depth_order):
        x = obj.x + obj.vx * step
        box = _draw_object(draw, obj, x, obj.y)
        _draw_object(mask_draw, obj, x, obj.y, fill_override=len(placed) + 1)
        placed.append(box)
    ids = np.asarray(mask)
    boxes = []
    for i, box in enumerate(placed, start=1):
        x1, y1 = max(0.0, box.x1), max(0.0, box.y1)
        x2, y2 = min(float(WIDTH), box.x2), min(float(HEIGHT), box.y2)
        if x2 - x1 < 3 or y2 - y1 < 3:
            continue
        drawn = np.count_nonzero(ids == i)
        # What this object would cover unoccluded, drawn alone on the same canvas.
        alone = Image.new("L", (WIDTH, HEIGHT), 0)
        obj = objects[depth_order[i - 1]]
        _draw_object(ImageDraw.Draw(alone), obj, obj.x + obj.vx * step, obj.y, fill_override=1)
        full = np.count_nonzero(np.asarray(alone))
        if full == 0 or drawn / full < MIN_VISIBLE:
            continue
        boxes.append(Box(box.category, x1, y1, x2, y2, f"{sequence_id}/{depth_order[i - 1]}"))
    noise_rng = _rng(seed, scenario, camera_id, "noise", frame_index)
    img = _apply_scenario(img, scenario, noise_rng, boxes)
    return Frame(
        image=img,
        boxes=boxes,
        camera_id=camera_id,
        scenario=scenario,
        sequence_id=sequence_id,
        frame_index=frame_index,
    )


def split_of(sequence_id: str, val_fraction: float = 0.15) -> str:
    """Train/val split by sequence, so frames of one sequence never straddle the split."""
    h = int.from_bytes(hashlib.sha256(sequence_id.encode()).digest()[:4], "little") / 2**32
    return "val" if h < val_fraction else "train"
