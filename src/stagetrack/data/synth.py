"""The embedded default: procedural videos of three domains, written in their real formats.

* ``dancetrack`` (MOTChallenge/DanceTrack layout): dancers in one costume per video, so that
  appearance barely separates them; non-linear motion (oscillation around formation slots that
  swap, making dancers cross) and frequent mutual occlusion.
* ``bdd`` (BDD100K box-track JSON): a street seen from a car: vehicles of distinct colours in
  lanes under perspective (size grows as they approach), plus a few pedestrians on the
  pavements.
* ``visdrone`` (VisDrone2019-MOT): a top-down scene of roads and plazas with many small
  vehicles and people, a slowly drifting camera, and a parking lot annotated as an ignored
  region (VisDrone category 0), as the real dataset does.

Every frame has textured backgrounds, static clutter that resembles objects, sensor noise and
brightness flicker, so detection is not trivial. Objects are drawn back to front through an
owner map, which gives each box its true visible fraction.

Generation is deterministic: video ``i`` of domain ``d`` uses ``default_rng([seed, d, i])``,
so adding videos never changes the earlier ones. Each domain has ``videos`` training-pool videos
of ``frames`` frames, then ``locked_videos`` shorter ones of ``locked_frames`` frames for the
manifest to lock as val and test (many short videos rank runs better than a few long ones, and
the training pool keeps its size). Frames go through the format writers in
:mod:`stagetrack.data.sources` (the same modules that read real datasets).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .config import SynthConfig, SynthDomainConfig
from .sequence import FLAG_OCCLUDED, FLAG_TRUNCATED, IGNORE, PERSON, VEHICLE, Sequence, empty_boxes

log = logging.getLogger(__name__)

DOMAINS: dict[str, tuple[int, str]] = {  # name -> (rng stream id, on-disk format)
    "dancetrack": (1, "mot"),
    "bdd": (2, "bdd"),
    "visdrone": (3, "visdrone"),
}

FPS = {"dancetrack": 20.0, "bdd": 5.0, "visdrone": 25.0}

Color = tuple[int, int, int]


def video_name(domain: str, index: int) -> str:
    """The video id of the ``index``-th (0-based) video, styled after the real dataset."""
    if domain == "dancetrack":
        return f"dancetrack{index + 1:04d}"
    if domain == "bdd":
        return f"b{index + 1:07x}-5ynth{index + 1:03d}"
    if domain == "visdrone":
        return f"uav{index + 1:07d}_00000_v"
    raise ValueError(domain)


# ----------------------------------------------------------------------------- sprites
# A sprite is drawn straight at its on-screen size into a small canvas: (bgr, mask).

def _person_side(w: int, h: int, look: dict, phase: float) -> tuple[np.ndarray, np.ndarray]:
    """A standing/walking figure seen from the front: head, striped shirt, arms, legs."""
    img = np.zeros((h, w, 3), np.uint8)
    m = np.zeros((h, w), np.uint8)
    cx = w / 2
    r = max(1.5, min(w * 0.22, h * 0.09))
    hy = r + 0.5

    def fill(draw: Callable[[np.ndarray, object], None], color: Color) -> None:
        draw(img, color)
        draw(m, 255)

    torso_top, torso_bot = int(h * 0.19), int(h * 0.56)
    sw = max(2, int(w * 0.36))
    # legs swing with the walk phase
    swing = math.sin(phase) * w * 0.12
    for side, s in ((-1, swing), (1, -swing)):
        leg = np.array([[cx + side * w * 0.05, torso_bot], [cx + side * w * 0.25, torso_bot],
                        [cx + side * w * 0.22 + s, h - 1], [cx + side * w * 0.04 + s, h - 1]], np.int32)
        fill(lambda c, col, leg=leg: cv2.fillConvexPoly(c, leg, col), look["pants"])
    arm_y = torso_top + 1
    for side in (-1, 1):
        a = np.array([[cx + side * sw, arm_y], [cx + side * (sw + w * 0.12), arm_y],
                      [cx + side * (sw + w * 0.1) - side * swing * 0.5, h * 0.52],
                      [cx + side * (sw - 1) - side * swing * 0.5, h * 0.52]], np.int32)
        fill(lambda c, col, a=a: cv2.fillConvexPoly(c, a, col), look["skin"])
    fill(lambda c, col: cv2.rectangle(c, (int(cx - sw), torso_top), (int(cx + sw), torso_bot), col, -1), look["shirt"])
    period = look["stripe_period"]
    if period:
        for y in range(torso_top + 1, torso_bot, period):
            cv2.line(img, (int(cx - sw), y), (int(cx + sw), y), look["stripe"], max(1, period // 3))
    cv2.circle(img, (int(cx), int(hy)), int(round(r)), look["skin"], -1, cv2.LINE_AA)
    cv2.circle(m, (int(cx), int(hy)), int(round(r)), 255, -1)
    cv2.ellipse(img, (int(cx), int(hy - r * 0.3)), (int(round(r)), max(1, int(r * 0.7))), 0, 180, 360, look["hair"], -1)
    return img, m > 0


def _vehicle_rear(w: int, h: int, look: dict) -> tuple[np.ndarray, np.ndarray]:
    """A car/truck/bus seen from behind: body, rear window, tail lights, plate, wheels."""
    img = np.zeros((h, w, 3), np.uint8)
    m = np.zeros((h, w), np.uint8)
    kind = look["kind"]
    body_top = int(h * (0.0 if kind != "car" else 0.18))
    cv2.rectangle(img, (0, body_top), (w - 1, int(h * 0.88)), look["body"], -1)
    cv2.rectangle(m, (0, body_top), (w - 1, int(h * 0.88)), 255, -1)
    if kind == "car":  # cabin narrower than the body
        cab = np.array([[w * 0.15, h * 0.18], [w * 0.85, h * 0.18], [w * 0.75, 0], [w * 0.25, 0]], np.int32)
        cv2.fillConvexPoly(img, cab, look["body"])
        cv2.fillConvexPoly(m, cab, 255)
        cv2.rectangle(img, (int(w * 0.22), int(h * 0.05)), (int(w * 0.78), int(h * 0.32)), (70, 50, 40), -1)
    elif kind == "bus":
        cv2.rectangle(img, (int(w * 0.08), int(h * 0.08)), (int(w * 0.92), int(h * 0.4)), (70, 50, 40), -1)
    else:  # truck: plain box with a stripe
        cv2.rectangle(img, (0, int(h * 0.3)), (w - 1, int(h * 0.36)), look["accent"], -1)
    ly = int(h * 0.55)
    lw, lh = max(1, int(w * 0.14)), max(1, int(h * 0.1))
    cv2.rectangle(img, (1, ly), (1 + lw, ly + lh), (30, 30, 220), -1)
    cv2.rectangle(img, (w - 2 - lw, ly), (w - 2, ly + lh), (30, 30, 220), -1)
    cv2.rectangle(img, (int(w * 0.4), int(h * 0.62)), (int(w * 0.6), int(h * 0.74)), (235, 235, 235), -1)
    cv2.rectangle(img, (int(w * 0.05), int(h * 0.85)), (int(w * 0.25), h - 1), (20, 20, 20), -1)
    cv2.rectangle(img, (int(w * 0.75), int(h * 0.85)), (int(w * 0.95), h - 1), (20, 20, 20), -1)
    cv2.rectangle(m, (int(w * 0.05), int(h * 0.85)), (int(w * 0.25), h - 1), 255, -1)
    cv2.rectangle(m, (int(w * 0.75), int(h * 0.85)), (int(w * 0.95), h - 1), 255, -1)
    return img, m > 0


def _vehicle_top(w: int, h: int, look: dict, horizontal: bool, forward: bool) -> tuple[np.ndarray, np.ndarray]:
    """A vehicle from above: body, a darker windscreen band at the front, a lighter roof."""
    L, S = (w, h) if horizontal else (h, w)
    img = np.zeros((S, L, 3), np.uint8)
    cv2.rectangle(img, (0, 0), (L - 1, S - 1), look["body"], -1)
    cv2.rectangle(img, (int(L * 0.62), 1), (int(L * 0.78), S - 2), (60, 45, 35), -1)
    cv2.rectangle(img, (int(L * 0.25), 1), (int(L * 0.6), S - 2), look["roof"], -1)
    if not forward:
        img = img[:, ::-1]
    if not horizontal:
        img = np.ascontiguousarray(np.rot90(img))
    return img, np.ones(img.shape[:2], bool)


def _person_top(w: int, h: int, look: dict) -> tuple[np.ndarray, np.ndarray]:
    """A person from above: shoulders (shirt) and a dark head."""
    img = np.zeros((h, w, 3), np.uint8)
    m = np.zeros((h, w), np.uint8)
    c = (w // 2, h // 2)
    cv2.ellipse(img, c, (max(1, w // 2), max(1, h // 3)), 0, 0, 360, look["shirt"], -1)
    cv2.ellipse(m, c, (max(1, w // 2), max(1, h // 3)), 0, 0, 360, 255, -1)
    cv2.circle(img, c, max(1, min(w, h) // 4), look["hair"], -1)
    cv2.circle(m, c, max(1, min(w, h) // 4), 255, -1)
    return img, m > 0


# ----------------------------------------------------------------------------- scene model

@dataclass
class Obj:
    """One identity: how it looks and where it is at each frame."""

    oid: int
    cls: int
    category: str
    look: dict
    boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # frame -> tlwh
    draw: Callable[[int, int, int], tuple[np.ndarray, np.ndarray]] | None = None  # (frame, w, h)


def _rand_color(rng: np.random.Generator, lo: int = 30, hi: int = 230) -> Color:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def _jitter(c: Color, rng: np.random.Generator, amount: int) -> Color:
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)


def _person_look(rng: np.random.Generator, costume: dict | None = None) -> dict:
    skins = [(140, 170, 220), (100, 140, 190), (70, 100, 150), (60, 80, 110)]
    if costume is not None:  # dancers: one costume, tiny per-identity variation
        return {**costume, "skin": _jitter(costume["skin"], rng, 6), "shirt": _jitter(costume["shirt"], rng, 8)}
    return {
        "skin": skins[int(rng.integers(len(skins)))],
        "hair": _rand_color(rng, 10, 80),
        "shirt": _rand_color(rng),
        "stripe": _rand_color(rng),
        "stripe_period": int(rng.choice([0, 3, 4, 6])),
        "pants": _rand_color(rng, 20, 160),
    }


def _vehicle_look(rng: np.random.Generator) -> dict:
    palette = [(240, 240, 240), (30, 30, 30), (180, 180, 185), (40, 40, 200), (200, 80, 30),
               (40, 140, 40), (30, 200, 230), (120, 60, 140), (90, 90, 90), (20, 90, 200)]
    body = palette[int(rng.integers(len(palette)))]
    return {"body": _jitter(body, rng, 20), "accent": _rand_color(rng), "roof": _jitter(body, rng, 40)}


def _texture(rng: np.random.Generator, h: int, w: int, base: Color, amp: float, scale: int) -> np.ndarray:
    """Low-frequency value noise around ``base``."""
    small = rng.normal(0, amp, (max(2, h // scale), max(2, w // scale), 3)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.asarray(base, np.float32) + big, 0, 255)


def _clutter(rng: np.random.Generator, img: np.ndarray, n: int, max_size: int) -> None:
    """Static shapes that resemble objects in colour and size (but are not annotated)."""
    h, w = img.shape[:2]
    for _ in range(n):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(3, max_size))
        col = _rand_color(rng)
        kind = rng.integers(4)
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + s, y + int(s * rng.uniform(0.3, 2.0))), col, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), max(1, s // 2), col, -1)
        elif kind == 2:
            cv2.line(img, (x, y), (x + int(rng.integers(-s, s)), y + int(rng.integers(-s, s))), col, 1 + int(rng.integers(2)))
        else:
            pts = (np.array([x, y]) + rng.integers(-s, s, (3, 2))).astype(np.int32)
            cv2.fillConvexPoly(img, pts, col)


# ----------------------------------------------------------------------------- domains

def _scene_dancetrack(rng: np.random.Generator, cfg: SynthDomainConfig) -> tuple[np.ndarray, list[Obj], list, Callable]:
    W, H, T = cfg.width, cfg.height, cfg.frames
    bg = _texture(rng, H, W, _rand_color(rng, 40, 120), 25, 24)
    floor_y = int(H * 0.42)
    bg[floor_y:] = _texture(rng, H - floor_y, W, _rand_color(rng, 60, 160), 12, 8)
    bg = bg.astype(np.uint8)
    for x in range(0, W, int(rng.integers(18, 30))):  # floor boards
        cv2.line(bg, (x, floor_y), (int(W / 2 + (x - W / 2) * 1.6), H), (0, 0, 0), 1)
    _clutter(rng, bg[:floor_y], 14, 14)
    costume = _person_look(rng)
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    slots = np.stack([np.linspace(W * 0.12, W * 0.88, n), rng.uniform(H * 0.62, H * 0.95, n)], 1)
    order = rng.permutation(n)
    objs = []
    amp = rng.uniform(4, 14, (n, 2))
    freq = rng.uniform(0.05, 0.22, (n, 2))
    ph = rng.uniform(0, 2 * math.pi, (n, 2))
    # formation changes: every `period` frames dancers move to permuted slots over `ramp` frames
    period, ramp = int(rng.integers(18, 30)), 10
    assign = [order.copy()]
    for _ in range(T // period + 1):
        nxt = assign[-1].copy()
        i, j = rng.choice(n, 2, replace=False)
        nxt[i], nxt[j] = nxt[j], nxt[i]
        if n > 3 and rng.random() < 0.5:
            k, l = rng.choice(n, 2, replace=False)
            nxt[k], nxt[l] = nxt[l], nxt[k]
        assign.append(nxt)
    for k in range(n):
        look = _person_look(rng, costume)
        o = Obj(oid=k + 1, cls=PERSON, category="1", look=look)
        for t in range(T):
            seg, pos = divmod(t, period)
            a = min(1.0, pos / ramp)
            a = a * a * (3 - 2 * a)  # smoothstep
            base = slots[assign[seg][k]] * (1 - a) + slots[assign[seg + 1][k]] * a
            foot = base + amp[k] * np.sin(freq[k] * t + ph[k])
            scale = 0.75 + 0.45 * (foot[1] - H * 0.55) / (H * 0.45)
            h = H * 0.34 * scale
            w = h * 0.42
            o.boxes[t + 1] = (foot[0] - w / 2, foot[1] - h, w, h)
        o.draw = lambda f, w, h, look=look, k=k: _person_side(w, h, look, 0.5 * f + k)
        objs.append(o)
    return bg, objs, [], lambda t: (0.0, 0.0)


def _scene_bdd(rng: np.random.Generator, cfg: SynthDomainConfig) -> tuple[np.ndarray, list[Obj], list, Callable]:
    W, H, T = cfg.width, cfg.height, cfg.frames
    horizon = int(H * rng.uniform(0.36, 0.44))
    cx = W / 2 + rng.uniform(-W * 0.05, W * 0.05)
    bg = np.empty((H, W, 3), np.float32)
    bg[:horizon] = _texture(rng, horizon, W, (200, 170, 140), 15, 20)           # sky
    bg[horizon:] = _texture(rng, H - horizon, W, (95, 95, 95), 10, 6)           # asphalt
    bg = bg.astype(np.uint8)
    f = H - horizon  # focal scale: a point at depth z=1 on the ground is at the image bottom
    road_half = 1.6

    def project(x: float, z: float) -> tuple[float, float, float]:
        s = 1.0 / z
        return cx + x * f * s, horizon + f * s, s

    side = np.array([[cx, horizon], [cx + road_half * f * 4, horizon + f * 4], [cx - road_half * f * 4, horizon + f * 4]], np.int32)
    cv2.fillConvexPoly(bg, side, (90, 90, 92))
    for x in (-road_half * 1.05, road_half * 1.05):  # pavements' edges
        cv2.line(bg, (int(cx), horizon), (int(cx + x * f * 4), horizon + f * 4), (170, 170, 170), 2)
    for z in np.arange(1.2, 12, 1.2):  # lane dashes
        x0, y0, _ = project(0, z)
        x1, y1, _ = project(0, z + 0.5)
        cv2.line(bg, (int(x0), int(y0)), (int(x1), int(y1)), (220, 220, 220), 1)
    sky = bg[:horizon]
    for _ in range(int(rng.integers(6, 12))):  # buildings and poles on the skyline
        x = int(rng.integers(0, W))
        bw, bh = int(rng.integers(10, 40)), int(rng.integers(8, horizon))
        cv2.rectangle(sky, (x, horizon - bh), (x + bw, horizon), _rand_color(rng, 60, 200), -1)
    _clutter(rng, bg[horizon:], 8, 10)
    objs: list[Obj] = []
    next_id = 1
    lanes = [-1.05, -0.35, 0.35, 1.05]
    n_target = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    active: list[tuple[Obj, dict]] = []

    def spawn(t: int, initial: bool) -> None:
        nonlocal next_id
        is_ped = rng.random() < 0.2
        if is_ped:
            look = _person_look(rng)
            o = Obj(next_id, PERSON, "pedestrian", look)
            st = {"x": rng.choice([-1, 1]) * road_half * rng.uniform(1.15, 1.5), "z": rng.uniform(2.0, 6.0),
                  "vz": rng.uniform(-0.05, 0.05), "vx": 0.0, "wz": 0.45, "hz": 1.1}
            o.draw = lambda fr, w, h, look=look, oid=next_id: _person_side(w, h, look, 0.6 * fr + oid)
        else:
            kind = str(rng.choice(["car", "car", "car", "truck", "bus"]))
            look = {**_vehicle_look(rng), "kind": kind}
            if kind == "bus":
                look["body"] = _jitter((40, 190, 230), rng, 25)
            lane = float(rng.choice(lanes))
            oncoming = lane < 0
            size = {"car": (1.15, 0.85), "truck": (1.3, 1.3), "bus": (1.4, 1.45)}[kind]
            z0 = rng.uniform(1.6, 9.0) if initial else (9.5 if not oncoming else 10.0)
            vz = rng.uniform(-0.25, -0.12) if oncoming else rng.uniform(-0.06, 0.06)
            o = Obj(next_id, VEHICLE, kind, look)
            st = {"x": lane, "z": z0, "vz": vz, "vx": 0.0, "wz": size[0], "hz": size[1]}
            o.draw = lambda fr, w, h, look=look: _vehicle_rear(w, h, look)
        next_id += 1
        objs.append(o)
        active.append((o, st))

    for _ in range(n_target):
        spawn(0, True)
    for t in range(T):
        for o, st in list(active):
            x, y_bot, s = project(st["x"], st["z"])
            w, h = st["wz"] * f * s, st["hz"] * f * s
            visible = st["z"] > 1.05 and h >= 6 and x + w / 2 > 0 and x - w / 2 < W
            if visible:
                o.boxes[t + 1] = (x - w / 2, y_bot - h, w, h)
            st["z"] += st["vz"] * (1 + 0.02 * rng.standard_normal())
            if st["z"] < 1.05 or st["z"] > 11:
                active.remove((o, st))
        while len(active) < n_target and rng.random() < 0.3:
            spawn(t, False)
    return bg, [o for o in objs if o.boxes], [], lambda t: (0.0, 0.0)


def _scene_visdrone(rng: np.random.Generator, cfg: SynthDomainConfig) -> tuple[np.ndarray, list[Obj], list, Callable]:
    W, H, T = cfg.width, cfg.height, cfg.frames
    WW, WH = int(W * 1.5), int(H * 1.5)  # world canvas; the camera drifts over it
    world = _texture(rng, WH, WW, (70, 120, 80), 18, 10).astype(np.uint8)   # grass
    roads_h = sorted(rng.choice(np.arange(30, WH - 30, 10), 2, replace=False))
    roads_v = sorted(rng.choice(np.arange(30, WW - 30, 10), 2, replace=False))
    rw = 22
    for y in roads_h:
        world[y - rw // 2:y + rw // 2] = _texture(rng, rw, WW, (105, 105, 105), 8, 4).astype(np.uint8)
    for x in roads_v:
        world[:, x - rw // 2:x + rw // 2] = _texture(rng, WH, rw, (105, 105, 105), 8, 4).astype(np.uint8)
    for y in roads_h:
        for x in range(0, WW, 12):
            cv2.line(world, (x, y), (x + 5, y), (210, 210, 210), 1)
    for _ in range(int(rng.integers(6, 11))):  # buildings, trees
        x, y = int(rng.integers(0, WW)), int(rng.integers(0, WH))
        if rng.random() < 0.5:
            cv2.rectangle(world, (x, y), (x + int(rng.integers(12, 40)), y + int(rng.integers(12, 40))), _rand_color(rng, 90, 200), -1)
        else:
            cv2.circle(world, (x, y), int(rng.integers(4, 10)), (30, int(rng.integers(70, 110)), 30), -1)
    _clutter(rng, world, 30, 7)
    # a parking lot with parked cars: annotated as an ignored region (VisDrone category 0)
    px, py = int(rng.integers(10, WW - 70)), int(rng.integers(10, WH - 50))
    lot = (px, py, 60, 36)
    cv2.rectangle(world, (px, py), (px + 60, py + 36), (120, 120, 125), -1)
    for i in range(5):
        for j in range(2):
            img, _ = _vehicle_top(12, 7, _vehicle_look(rng) | {"roof": _rand_color(rng)}, False, True)
            vy, vx = py + 3 + j * 18, px + 3 + i * 11
            world[vy:vy + img.shape[0], vx:vx + img.shape[1]] = img[: WH - vy, : WW - vx]
    drift = rng.uniform(-0.35, 0.35, 2) * [1.0, 0.7]
    start = np.array([rng.uniform(0.1, 0.4) * (WW - W), rng.uniform(0.1, 0.4) * (WH - H)])

    def cam(t: int) -> tuple[float, float]:
        off = start + drift * t + 2.0 * np.sin([0.05 * t, 0.04 * t])
        return float(np.clip(off[0], 0, WW - W)), float(np.clip(off[1], 0, WH - H))

    objs: list[Obj] = []
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    for k in range(n):
        if rng.random() < 0.55:
            look = {**_vehicle_look(rng), "roof": _rand_color(rng)}
            kind = str(rng.choice(["4", "4", "4", "5", "6"]))
            length, width = {"4": (16, 9), "5": (18, 10), "6": (22, 11)}[kind]
            horizontal = rng.random() < 0.5
            lane = float(rng.choice(roads_h if horizontal else roads_v)) + rng.choice([-5, 5])
            forward = bool(rng.random() < 0.5)
            speed = rng.uniform(0.8, 2.2) * (1 if forward else -1)
            p0 = rng.uniform(0, WW if horizontal else WH)
            o = Obj(k + 1, VEHICLE, kind, look)
            w, h = (length, width) if horizontal else (width, length)
            for t in range(T):
                p = p0 + speed * t
                x, y = (p, lane) if horizontal else (lane, p)
                o.boxes[t + 1] = (x - w / 2, y - h / 2, w, h)
            o.draw = lambda fr, w, h, look=look, hz=horizontal, fw=forward: _vehicle_top(w, h, look, hz, fw)
        else:
            look = _person_look(rng)
            size = int(rng.integers(7, 10))
            pos = np.array([rng.uniform(0, WW), rng.uniform(0, WH)])
            heading = rng.uniform(0, 2 * math.pi)
            o = Obj(k + 1, PERSON, str(rng.choice(["1", "1", "2"])), look)
            for t in range(T):
                heading += rng.normal(0, 0.15)
                pos = pos + 0.5 * np.array([math.cos(heading), math.sin(heading)])
                o.boxes[t + 1] = (pos[0] - size / 2, pos[1] - size / 2, size, size)
            o.draw = lambda fr, w, h, look=look: _person_top(w, h, look)
        objs.append(o)
    return world, objs, [lot], cam


SCENES = {"dancetrack": _scene_dancetrack, "bdd": _scene_bdd, "visdrone": _scene_visdrone}


# ----------------------------------------------------------------------------- rendering

def render_video(domain: str, index: int, cfg: SynthDomainConfig, seed: int) -> tuple[Sequence, Iterator[np.ndarray]]:
    """Build one video: its annotations (a :class:`Sequence` without images) and its frames."""
    stream, _ = DOMAINS[domain]
    rng = np.random.default_rng([seed, stream, index])
    world, objs, ignore_regions, cam = SCENES[domain](rng, cfg)
    W, H, T = cfg.width, cfg.height, cfg.frames
    noise_rng = np.random.default_rng([seed, stream, index, 1])
    rows = []
    frames = []
    for t in range(1, T + 1):
        ox, oy = cam(t - 1)
        ix, iy = int(round(ox)), int(round(oy))
        frame = world[iy:iy + H, ix:ix + W].astype(np.int16).copy()
        owner = np.full((H, W), -1, np.int32)
        # draw back to front: larger bottom y is nearer the camera (for the top view, order by id)
        present = [(o, o.boxes[t]) for o in objs if t in o.boxes]
        present.sort(key=lambda p: (p[1][1] + p[1][3]) if domain != "visdrone" else p[0].oid)
        areas = {}
        placed = {}
        for o, (x, y, w, h) in present:
            x, y = x - ix, y - iy  # world -> image (the camera moves in whole pixels)
            wi, hi = max(2, int(round(w))), max(2, int(round(h)))
            xi, yi = int(round(x)), int(round(y))
            img, mask = o.draw(t, wi, hi)
            hi, wi = mask.shape
            x0, y0, x1, y1 = max(xi, 0), max(yi, 0), min(xi + wi, W), min(yi + hi, H)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            sub = mask[y0 - yi:y1 - yi, x0 - xi:x1 - xi]
            frame[y0:y1, x0:x1][sub] = img[y0 - yi:y1 - yi, x0 - xi:x1 - xi][sub]
            owner[y0:y1, x0:x1][sub] = o.oid
            areas[o.oid] = int(mask.sum())
            placed[o.oid] = (o, (xi, yi, wi, hi), (x0, y0, x1, y1), int(sub.sum()))
        counts = np.bincount(owner[owner >= 0].ravel(), minlength=max([0, *areas]) + 1) if areas else []
        for oid, (o, (xi, yi, wi, hi), (x0, y0, x1, y1), inside) in placed.items():
            vis = float(counts[oid]) / max(1, areas[oid])
            if counts[oid] < 4:
                continue
            trunc = inside < areas[oid]
            rows.append((t, oid, x0, y0, x1 - x0, y1 - y0, o.cls, o.category, vis,
                         (FLAG_OCCLUDED if vis < 0.75 else 0) | (FLAG_TRUNCATED if trunc else 0)))
        for (lx, ly, lw, lh) in ignore_regions:
            x0, y0 = max(lx - ix, 0), max(ly - iy, 0)
            x1, y1 = min(lx + lw - ix, W), min(ly + lh - iy, H)
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                rows.append((t, -1, x0, y0, x1 - x0, y1 - y0, IGNORE, "0", 1.0, 0))
        gain = 1.0 + 0.06 * math.sin(0.3 * t + index)
        noise = noise_rng.normal(0, 6.0, frame.shape)
        frames.append(np.clip(frame * gain + noise, 0, 255).astype(np.uint8))
    boxes = empty_boxes(len(rows))
    for i, (t, oid, x, y, w, h, c, cat, vis, flags) in enumerate(rows):
        boxes[i] = (t, oid, x, y, w, h, 1.0, c, cat, vis, flags)
    seq = Sequence(name=video_name(domain, index), width=W, height=H, length=T, fps=FPS[domain],
                   boxes=boxes, source=domain)
    return seq, iter(frames)


# ----------------------------------------------------------------------------- driver

def _write_one(job: tuple[str, int, SynthDomainConfig, int, str, int]) -> tuple[str, int, int]:
    from .sources import write_video

    domain, index, dcfg, seed, root, quality = job
    seq, frames = render_video(domain, index, dcfg, seed)
    write_video(DOMAINS[domain][1], seq, Path(root), frames, jpeg_quality=quality)
    return seq.name, seq.length, len(seq.boxes)


def video_config(cfg: SynthDomainConfig, index: int) -> SynthDomainConfig:
    """The config of the ``index``-th video: the locked videos after the pool are shorter."""
    if index < cfg.videos or not cfg.locked_frames:
        return cfg
    return dataclasses.replace(cfg, frames=cfg.locked_frames)


def generate(cfg: SynthConfig, out: str | Path | None = None, workers: int | None = None) -> dict[str, list[str]]:
    """Write every domain's videos under ``out/<domain>`` (default ``cfg.out``).

    Returns the video ids per domain. Videos render in parallel processes; the output does
    not depend on the number of workers.
    """
    from tqdm import tqdm

    root = Path(out or cfg.out)
    jobs = [(d, i, video_config(getattr(cfg, d), i), cfg.seed, str(root / d), cfg.jpeg_quality)
            for d in DOMAINS for i in range(getattr(cfg, d).videos + getattr(cfg, d).locked_videos)]
    names: dict[str, list[str]] = {d: [] for d in DOMAINS}
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Inline() as pool:
        results = pool.map(_write_one, jobs)
        for (domain, *_), (name, frames, boxes) in tqdm(zip(jobs, results), total=len(jobs), desc="synth", unit="video", disable=None):
            names[domain].append(name)
            log.debug("%s/%s: %d frames, %d boxes", domain, name, frames, boxes)
    return names


class _Inline:
    """A stand-in for an executor that runs jobs in this process (workers=1)."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def map(fn, jobs):  # noqa: ANN001, ANN205 - mirrors Executor.map
        return map(fn, jobs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (section `synth`)")
    parser.add_argument("--out", default=None, help="output root (default: synth.out from params)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from ..config import load_params

    params = load_params(args.params)
    names = generate(params.synth, args.out, args.workers)
    for domain, ids in names.items():
        log.info("%s: %d videos under %s", domain, len(ids), Path(args.out or params.synth.out) / domain)
    return 0
