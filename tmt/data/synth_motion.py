"""Motion of the synthetic Human3.6M-like set: a rigid 17-joint body driven by joint angles, one program per action.

Poses come only from rotating bones of fixed length (forward kinematics), so every bone keeps its subject's
length exactly in every frame. Angles are in degrees in the body's own frame (x forward, y left, z up) and are
clipped to anatomical ranges (knees and elbows bend one way only); the legs hang from a heading frame (yaw
only) so that bending the torso forward does not swing the legs. Each action program shapes the angles with
smooth random variation (sums of sinusoids), eased key poses and events (a wave, a bite, a puff), and a
horizontal track: a loop through the capture area for the walks, a spot with slow drift or short relocations
otherwise. ``place`` then stands the body on the floor (world Z-up, z = 0) and ``to_mocap32`` fills the
32-joint mocap layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmt.cameras import h36m_metadata
from tmt.skeleton import H36M, H36M_JOINTS_KEPT_FROM_32

FPS = 50.0
PARENTS = np.asarray(H36M.parents)
L_FOOT, R_FOOT = H36M.index("LFoot"), H36M.index("RFoot")
LEFT_SIDE, RIGHT_SIDE = 1.0, -1.0

# Bone (parent -> joint) of every joint, named as in h36m.json `bone_lengths_mm_reference_skeleton`.
_BONE_NAMES = (
    None, "Hip-RHip", "RHip-RKnee", "RKnee-RFoot", "Hip-RHip", "RHip-RKnee", "RKnee-RFoot", "Hip-Spine",
    "Spine-Thorax", "Thorax-Neck/Nose", "Neck/Nose-Head", "Thorax-Shoulder", "Shoulder-Elbow", "Elbow-Wrist",
    "Thorax-Shoulder", "Shoulder-Elbow", "Elbow-Wrist",
)  # fmt: skip

# Rest-pose direction of every bone in its parent's frame: standing upright, arms hanging, facing +x.
_REST = np.array(
    [
        [0, 0, 0], [0, -1, 0], [0, 0, -1], [0, 0, -1], [0, 1, 0], [0, 0, -1], [0, 0, -1], [0, 0, 1],
        [0, 0, 1], [0.2, 0, 1], [0.1, 0, 1], [0, 1, 0], [0, 0, -1], [0, 0, -1], [0, -1, 0], [0, 0, -1],
        [0, 0, -1],
    ],
    dtype=np.float64,
)  # fmt: skip
_REST[1:] /= np.linalg.norm(_REST[1:], axis=1, keepdims=True)

# Anatomical range of every angle (degrees); knees and elbows bend one way only. Side prefixes l_/r_ share limits.
LIMITS_DEG: dict[str, tuple[float, float]] = {
    "pelvis_twist": (-40, 40), "pelvis_pitch": (-15, 70), "pelvis_roll": (-15, 15),
    "spine_flex": (-20, 60), "spine_lat": (-25, 25), "spine_twist": (-35, 35),
    "chest_flex": (-20, 45), "chest_lat": (-20, 20), "chest_twist": (-35, 35),
    "neck_flex": (-40, 55), "neck_lat": (-30, 30), "neck_twist": (-75, 75), "head_flex": (-30, 30),
    "hip_flex": (-30, 125), "hip_abd": (-25, 50), "hip_rot": (-40, 40), "knee": (0, 150),
    "sh_flex": (-60, 180), "sh_abd": (-30, 170), "sh_rot": (-80, 100), "elbow": (0, 150),
}  # fmt: skip


@dataclass(frozen=True)
class Body:
    """One subject's skeleton: the length (metres) of the bone ending at each of the 17 joints (root 0)."""

    bone_lengths: np.ndarray
    height_scale: float


def reference_bone_lengths() -> np.ndarray:
    """(17,) bone lengths of the Human3.6M reference skeleton in metres."""
    mm = h36m_metadata()["bone_lengths_mm_reference_skeleton"]
    return np.array([0.0] + [mm[name] / 1000.0 for name in _BONE_NAMES[1:]])


def sample_body(rng: np.random.Generator) -> Body:
    """A subject: overall size ~N(1, 0.05) and per-bone proportions ~N(1, 0.03), left and right alike."""
    height = float(np.clip(rng.normal(1.0, 0.05), 0.85, 1.15))
    names = sorted(set(_BONE_NAMES[1:]))
    ratio = dict(zip(names, np.clip(rng.normal(1.0, 0.03, len(names)), 0.9, 1.1), strict=True))
    scale = np.array([0.0] + [ratio[name] for name in _BONE_NAMES[1:]])
    return Body(bone_lengths=reference_bone_lengths() * height * scale, height_scale=height)


def rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """(N,) angles -> (N, 3, 3) right-handed rotations about coordinate axis 0 (x), 1 (y) or 2 (z)."""
    a = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.zeros((*a.shape, 3, 3))
    r[..., axis, axis] = 1.0
    r[..., i, i], r[..., i, j], r[..., j, i], r[..., j, j] = c, -s, s, c
    return r


def _chain(*rotations: np.ndarray) -> np.ndarray:
    out = rotations[0]
    for r in rotations[1:]:
        out = out @ r
    return out


def clip_angles(angles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Clamp every angle into its anatomical range (the limit of `l_knee` is that of `knee`)."""
    out = {}
    for name, value in angles.items():
        key = name[2:] if name[:2] in ("l_", "r_") else name
        lo, hi = LIMITS_DEG[key]
        out[name] = np.clip(value, lo, hi)
    return out


def _local_rotations(a: dict[str, np.ndarray], n: int) -> dict[int, np.ndarray]:
    """Rotation of the bone ending at each joint relative to its parent frame (absent = rest)."""

    def get(name: str) -> np.ndarray:
        return a.get(name, np.zeros(n))

    local = {
        7: _chain(
            rotation(1, get("spine_flex")), rotation(0, get("spine_lat")), rotation(2, get("spine_twist"))
        ),
        8: _chain(
            rotation(1, get("chest_flex")), rotation(0, get("chest_lat")), rotation(2, get("chest_twist"))
        ),
        9: _chain(
            rotation(1, get("neck_flex")), rotation(0, get("neck_lat")), rotation(2, get("neck_twist"))
        ),
        10: rotation(1, get("head_flex")),
    }
    for side, s, thigh, upper in (("l_", LEFT_SIDE, 5, 12), ("r_", RIGHT_SIDE, 2, 15)):
        # Flexion swings a limb forward, abduction away from the body, internal rotation turns it inwards.
        local[thigh] = _chain(
            rotation(1, -get(side + "hip_flex")),
            rotation(0, s * get(side + "hip_abd")),
            rotation(2, -s * get(side + "hip_rot")),
        )
        local[thigh + 1] = rotation(1, get(side + "knee"))  # shank swings backwards
        local[upper] = _chain(
            rotation(1, -get(side + "sh_flex")),
            rotation(0, s * get(side + "sh_abd")),
            rotation(2, -s * get(side + "sh_rot")),
        )
        local[upper + 1] = rotation(1, -get(side + "elbow"))  # forearm swings forwards
    return local


def forward_kinematics(
    angles: dict[str, np.ndarray], heading_deg: np.ndarray, body: Body
) -> tuple[np.ndarray, np.ndarray]:
    """Joint angles -> root-relative joint positions (N, 17, 3) and every bone's world frame (N, 17, 3, 3).

    The heading frame turns the body about the vertical; the pelvis adds twist, forward tilt and side roll.
    """
    n = len(heading_deg)
    a = clip_angles(angles)
    heading = rotation(2, heading_deg)
    zeros = np.zeros(n)
    pelvis = _chain(
        heading,
        rotation(2, a.get("pelvis_twist", zeros)),
        rotation(1, a.get("pelvis_pitch", zeros)),
        rotation(0, a.get("pelvis_roll", zeros)),
    )
    local = _local_rotations(a, n)
    frames = np.empty((n, 17, 3, 3))
    frames[:, 0] = pelvis
    pos = np.zeros((n, 17, 3))
    for j in range(1, 17):
        p = PARENTS[j]
        parent_frame = heading if j in (2, 5) else frames[:, p]
        frames[:, j] = parent_frame @ local[j] if j in local else parent_frame
        pos[:, j] = pos[:, p] + frames[:, j] @ (body.bone_lengths[j] * _REST[j])
    return pos, frames


# ---------------------------------------------------------------------------------------------------------------
# Time-varying angle tracks
# ---------------------------------------------------------------------------------------------------------------


def wobble(
    rng: np.random.Generator, n: int, amp: float, freq: tuple[float, float] = (0.1, 0.5)
) -> np.ndarray:
    """Smooth zero-mean random variation with standard deviation ``amp``: a sum of three random sinusoids."""
    t = np.arange(n) / FPS
    f = rng.uniform(*freq, 3)
    phase = rng.uniform(0.0, 2.0 * np.pi, 3)
    w = rng.uniform(0.5, 1.0, 3)
    w *= amp / np.sqrt(np.sum(w**2) / 2.0)
    return np.sin(2.0 * np.pi * f[None] * t[:, None] + phase[None]) @ w


def keyframes(
    rng: np.random.Generator, n: int, values: np.ndarray, hold_s: np.ndarray, move_s: np.ndarray
) -> np.ndarray:
    """Hold each key value for ``hold_s`` seconds, then ease (smoothstep) to the next over ``move_s`` seconds.

    ``values`` is (K, D); the track starts at a random point of the first key so that sequences do not all begin
    at a key. K must cover the sequence (``keys_needed``). Returns (n, D).
    """
    start = np.concatenate([[0.0], np.cumsum(hold_s + move_s)[:-1]])
    start -= rng.uniform(0.0, hold_s[0] + move_s[0])
    t = np.arange(n) / FPS
    k = np.clip(np.searchsorted(start, t, side="right") - 1, 0, len(values) - 2)
    u = np.clip((t - start[k] - hold_s[k]) / move_s[k], 0.0, 1.0)
    w = (u * u * (3.0 - 2.0 * u))[:, None]
    return values[k] + w * (values[k + 1] - values[k])


def keys_needed(n: int, shortest_key_s: float) -> int:
    return int(np.ceil(n / FPS / shortest_key_s)) + 3


def alternating(
    rng: np.random.Generator, n: int, off_s: tuple[float, float], on_s: tuple[float, float], move_s=(0.5, 1.0)
) -> np.ndarray:
    """(n,) level that rests at 0 for ``off_s`` seconds and at 1 for ``on_s`` seconds, alternately."""
    k = keys_needed(n, min(off_s[0], on_s[0]) + move_s[0])
    on = (np.arange(k) + rng.integers(2)) % 2
    hold = np.where(on == 1, rng.uniform(*on_s, k), rng.uniform(*off_s, k))
    return keyframes(rng, n, on[:, None].astype(float), hold, rng.uniform(*move_s, k))[:, 0]


def events(
    rng: np.random.Generator,
    n: int,
    kinds: int,
    rest_s: tuple[float, float],
    event_s: tuple[float, float],
    move_s=(0.5, 0.9),
) -> np.ndarray:
    """(n, kinds) one-hot levels: rests alternate with events of a random kind, eased in and out."""
    k = keys_needed(n, min(rest_s[0], event_s[0]) + move_s[0])
    values = np.zeros((k, kinds))
    on = np.arange(k) % 2 == 1
    values[on, rng.integers(kinds, size=int(on.sum()))] = 1.0
    hold = np.where(on, rng.uniform(*event_s, k), rng.uniform(*rest_s, k))
    return keyframes(rng, n, values, hold, rng.uniform(*move_s, k))


# ---------------------------------------------------------------------------------------------------------------
# Postures
# ---------------------------------------------------------------------------------------------------------------

ARM_POSES: dict[str, tuple[float, float, float, float]] = {
    # (shoulder flexion, abduction, internal rotation, elbow flexion), degrees; hand targets fitted once by IK.
    "hang": (5, 8, 15, 15),
    "ear": (72, 0, 32, 145),  # hand at the ear (phone)
    "mouth": (64, -12, 40, 136),  # hand at the mouth (eating, smoking)
    "camera": (80, 5, 25, 111),  # hands held in front of the face
    "wave": (103, 72, 13, 86),  # elbow out at shoulder height, forearm up
    "crossed": (21, -6, 81, 95),
    "hip": (-24, 32, 39, 74),  # hand on the hip
    "point": (85, 15, 0, 5),
    "gesture": (35, 12, 35, 80),
    "table": (35, 10, 30, 85),
    "lap": (25, 8, 25, 55),
    "leash": (38, 12, 10, 20),
    "carry": (10, 10, 30, 90),
    "behind": (-35, 10, -20, 60),
}
_ARM_DOFS = ("sh_flex", "sh_abd", "sh_rot", "elbow")


def arm(n: int, pose: str) -> np.ndarray:
    return np.broadcast_to(np.asarray(ARM_POSES[pose], dtype=np.float64), (n, 4)).copy()


def set_arm(a: dict[str, np.ndarray], side: str, values: np.ndarray) -> None:
    """Write an (n, 4) arm track into the angle dict for side 'l' or 'r'."""
    for i, dof in enumerate(_ARM_DOFS):
        a[f"{side}_{dof}"] = values[:, i]


def get_arm(a: dict[str, np.ndarray], side: str) -> np.ndarray:
    return np.stack([a[f"{side}_{dof}"] for dof in _ARM_DOFS], axis=1)


def blend(base: np.ndarray, target: np.ndarray, level: np.ndarray) -> np.ndarray:
    return base + level[:, None] * (target - base)


def arm_choices(rng: np.random.Generator, n: int, poses: tuple[str, ...], hold_s=(2.0, 6.0)) -> np.ndarray:
    """(n, 4) arm track that moves between randomly chosen postures."""
    k = keys_needed(n, hold_s[0] + 0.6)
    values = np.array([ARM_POSES[p] for p in rng.choice(poses, size=k)], dtype=np.float64)
    return keyframes(rng, n, values, rng.uniform(*hold_s, k), rng.uniform(0.6, 1.2, k))


def arm_jitter(rng: np.random.Generator, n: int, amp: float, freq=(0.15, 0.6)) -> np.ndarray:
    return np.stack([wobble(rng, n, amp, freq) for _ in range(4)], axis=1) * [1.0, 0.6, 1.0, 1.2]


@dataclass
class Motion:
    """Angles (degrees) over time, body heading (degrees) and a horizontal track (metres, world).

    ``planted`` (scalar or per frame) says what the track holds still: 1 the feet (standing: the pelvis moves
    over them), 0 the pelvis (walking; sitting: the chair does not move when the legs do); in between blends.
    """

    angles: dict[str, np.ndarray]
    heading: np.ndarray
    xy: np.ndarray
    planted: float | np.ndarray = 1.0


def standing(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Relaxed upright stance with small postural sway."""
    a = {
        "spine_flex": 3 + wobble(rng, n, 2),
        "spine_lat": wobble(rng, n, 1.5),
        "spine_twist": wobble(rng, n, 3),
        "chest_flex": 2 + wobble(rng, n, 2),
        "chest_lat": wobble(rng, n, 1.5),
        "chest_twist": wobble(rng, n, 3),
        "neck_flex": 5 + wobble(rng, n, 5),
        "neck_lat": wobble(rng, n, 3),
        "neck_twist": wobble(rng, n, 12, (0.05, 0.3)),
        "head_flex": wobble(rng, n, 3),
        "pelvis_roll": wobble(rng, n, 1.0, (0.05, 0.2)),
    }
    for side in "lr":
        a[f"{side}_hip_flex"] = 2 + wobble(rng, n, 1.5)
        a[f"{side}_hip_abd"] = 4 + wobble(rng, n, 1.0)
        a[f"{side}_hip_rot"] = 5 + wobble(rng, n, 3)
        a[f"{side}_knee"] = 4 + wobble(rng, n, 2)
        set_arm(a, side, arm(n, "hang") + arm_jitter(rng, n, 3))
    return a


def seated(rng: np.random.Generator, n: int, a: dict[str, np.ndarray], level: np.ndarray) -> None:
    """Blend the legs and trunk towards sitting on a chair (level 0 = standing, 1 = seated)."""
    for side in "lr":
        a[f"{side}_hip_flex"] = a[f"{side}_hip_flex"] + level * (85 + wobble(rng, n, 4))
        a[f"{side}_knee"] = a[f"{side}_knee"] + level * (85 + wobble(rng, n, 12, (0.02, 0.15)))
        a[f"{side}_hip_abd"] = a[f"{side}_hip_abd"] + level * wobble(rng, n, 5, (0.02, 0.15))
    a["spine_flex"] = a["spine_flex"] + level * (-6 + wobble(rng, n, 6))


def crouch(a: dict[str, np.ndarray], depth: np.ndarray) -> None:
    """Bend hips and knees together (feet stay under the body): depth in degrees of hip flexion."""
    for side in "lr":
        a[f"{side}_hip_flex"] = a[f"{side}_hip_flex"] + depth
        a[f"{side}_knee"] = a[f"{side}_knee"] + 2.0 * depth
    a["pelvis_pitch"] = a.get("pelvis_pitch", 0.0) + 0.4 * depth


def stay(
    rng: np.random.Generator, n: int, radius: float = 0.6, drift: float = 0.06, turn: float = 15.0
) -> tuple[np.ndarray, np.ndarray]:
    """Heading and track of an action done in place: random spot and facing, slow turns and drift."""
    centre = _AREA_CENTRE + radius * np.sqrt(rng.uniform()) * _unit_vector(rng.uniform(0, 2 * np.pi))
    heading = rng.uniform(0, 360) + wobble(rng, n, turn, (0.02, 0.1))
    xy = centre + np.stack([wobble(rng, n, drift, (0.02, 0.1)), wobble(rng, n, drift, (0.02, 0.1))], axis=1)
    return heading, xy


def steps(rng: np.random.Generator, n: int, hold_s=(3.0, 8.0), reach: float = 0.5) -> np.ndarray:
    """(n, 2) feet track that relocates by a short walk now and then (keyed displacements around the area)."""
    k = keys_needed(n, hold_s[0] + 0.8)
    centre = _AREA_CENTRE + 0.4 * np.sqrt(rng.uniform()) * _unit_vector(rng.uniform(0, 2 * np.pi))
    spots = centre + rng.uniform(-reach, reach, (k, 2))
    return keyframes(rng, n, spots, rng.uniform(*hold_s, k), rng.uniform(0.8, 1.6, k))


def _unit_vector(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


# Middle of the region that all four Human3.6M cameras see whole (the capture volume).
_AREA_CENTRE = np.array([0.25, 0.25])


# ---------------------------------------------------------------------------------------------------------------
# Walking
# ---------------------------------------------------------------------------------------------------------------


def _cyclic_bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = (phase - centre + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (d / width) ** 2)


def gait(
    rng: np.random.Generator, a: dict[str, np.ndarray], speed: np.ndarray, body: Body, arm_swing: float
) -> None:
    """Leg, pelvis and arm-swing angles of walking at ``speed`` (m/s per frame), stride matched to the legs.

    Cadence follows from the hip swing so that the stance foot moves backwards under the body at nearly the
    walking speed (the feet slide little). Phase 0 = right heel strike.
    """
    leg = body.bone_lengths[2] + body.bone_lengths[3]
    swing = np.clip(8.0 + 10.0 * speed, 10.0, 24.0)
    rad = np.deg2rad
    # Hip swing alone gives the step of an ankle-less leg; 1.15x (roll-over of the foot) leaves the least
    # stance-foot sliding and a natural cadence (about 1.8 steps/s at 1.3 m/s).
    stride = 1.15 * 2.0 * leg * (np.sin(rad(8.0 + swing)) + np.sin(rad(swing - 8.0)))
    phase = rng.uniform() + np.cumsum(speed / stride) / FPS
    knee_swing = 35.0 + 20.0 * speed
    for side, shift in (("r", 0.0), ("l", 0.5)):
        p = phase + shift
        a[f"{side}_hip_flex"] = 8.0 + swing * np.cos(2 * np.pi * p)
        a[f"{side}_knee"] = 5.0 + 15.0 * _cyclic_bump(p, 0.12, 0.07) + knee_swing * _cyclic_bump(p, 0.7, 0.1)
        a[f"{side}_hip_abd"] = 3.0 + 2.0 * np.cos(2 * np.pi * p)
        a[f"{side}_hip_rot"] = 5.0 + wobble(rng, len(p), 2)
        # Each arm swings with the opposite leg.
        a[f"{side}_sh_flex"] = a[f"{side}_sh_flex"] + arm_swing * swing * np.cos(2 * np.pi * (p + 0.5))
        a[f"{side}_elbow"] = a[f"{side}_elbow"] + 10.0 * arm_swing * (1 + np.cos(2 * np.pi * (p + 0.5)))
    a["pelvis_twist"] = 5.0 * np.sin(2 * np.pi * phase)
    a["chest_twist"] = a["chest_twist"] - 6.0 * np.sin(2 * np.pi * phase)
    a["pelvis_roll"] = 3.0 * np.sin(4 * np.pi * phase)


def loop_path(rng: np.random.Generator, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walk along an ellipse around the capture area at the given speed: (n, 2) pelvis xy, (n,) heading deg."""
    radii = np.array([rng.uniform(0.7, 1.0), rng.uniform(1.1, 1.5)])
    centre = _AREA_CENTRE + rng.uniform(-0.15, 0.15, 2)
    tilt = np.deg2rad(rng.uniform(-15, 15))
    turn = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    sense = rng.choice([-1.0, 1.0])
    grid = np.linspace(0.0, 2.0 * np.pi, 2049)
    ring = radii * np.stack([np.cos(grid), np.sin(grid)], axis=1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(ring, axis=0), axis=1))])
    distance = rng.uniform(0, arc[-1]) + np.cumsum(speed) / FPS
    theta = sense * np.interp(distance % arc[-1], arc, grid)
    xy = centre + (radii * np.stack([np.cos(theta), np.sin(theta)], axis=1)) @ turn.T
    tangent = (sense * radii * np.stack([-np.sin(theta), np.cos(theta)], axis=1)) @ turn.T
    heading = np.rad2deg(np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0])))
    return xy, heading


def _walk(
    rng: np.random.Generator, n: int, body: Body, speed: np.ndarray, arm_swing: float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    a = standing(rng, n)
    gait(rng, a, speed, body, arm_swing)
    xy, heading = loop_path(rng, speed)
    return a, xy, heading


def walking(rng: np.random.Generator, n: int, body: Body) -> Motion:
    speed = rng.uniform(1.1, 1.5) + wobble(rng, n, 0.06, (0.05, 0.2))
    a, xy, heading = _walk(rng, n, body, speed, rng.uniform(0.5, 1.0))
    return Motion(a, heading, xy, planted=0.0)


def walk_together(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Slower walk beside a partner: head turned towards them, smaller arm swing."""
    speed = rng.uniform(0.8, 1.1) + wobble(rng, n, 0.06, (0.05, 0.2))
    a, xy, heading = _walk(rng, n, body, speed, rng.uniform(0.2, 0.5))
    a["neck_twist"] = a["neck_twist"] + rng.choice([-1, 1]) * (20 + wobble(rng, n, 10, (0.05, 0.3)))
    return Motion(a, heading, xy, planted=0.0)


def walk_dog(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Irregular slow walk holding a leash forward, trunk and head bent towards the dog."""
    speed = rng.uniform(0.65, 0.95) * np.clip(1.0 + wobble(rng, n, 0.4, (0.05, 0.2)), 0.25, 1.5)
    a, xy, heading = _walk(rng, n, body, speed, rng.uniform(0.3, 0.7))
    side = rng.choice(["l", "r"])
    set_arm(a, side, arm(n, "leash") + arm_jitter(rng, n, 8, (0.3, 1.0)))
    a["spine_flex"] = a["spine_flex"] + 8
    a["neck_flex"] = a["neck_flex"] + 15 + wobble(rng, n, 8)
    return Motion(a, heading, xy, planted=0.0)


# ---------------------------------------------------------------------------------------------------------------
# Actions in place
# ---------------------------------------------------------------------------------------------------------------


def directions(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Pointing with either arm in changing directions, trunk and head turning with the pointing arm."""
    a = standing(rng, n)
    heading, xy = stay(rng, n)
    point = events(rng, n, 2, rest_s=(1.0, 3.0), event_s=(1.5, 3.5))
    k = keys_needed(n, 1.0)
    aim = keyframes(
        rng, n, rng.uniform([-35, 0, -15], [35, 45, 30], (k, 3)), rng.uniform(1, 3, k), np.full(k, 0.7)
    )
    for i, side in enumerate("lr"):
        rest = blend(get_arm(a, side), arm(n, "gesture"), 0.4 + 0.4 * wobble(rng, n, 0.5))
        target = arm(n, "point")
        target[:, :2] += aim[:, [2, 1]]  # raise/lower and swing out
        set_arm(a, side, blend(rest, target, point[:, i]))
    pointing = point.sum(axis=1)
    a["chest_twist"] = a["chest_twist"] + pointing * aim[:, 0] * 0.6
    a["neck_twist"] = a["neck_twist"] + pointing * aim[:, 0]
    return Motion(a, heading, xy)


def discussion(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Talking: both hands gesturing in front of the body in bursts, nodding, turning towards listeners."""
    a = standing(rng, n)
    heading, xy = stay(rng, n)
    heading = heading + wobble(rng, n, 20, (0.02, 0.08))
    talk = alternating(rng, n, off_s=(1.0, 3.0), on_s=(3.0, 8.0))
    for side in "lr":
        rest = arm_choices(rng, n, ("hang", "crossed", "hip", "behind"), (3.0, 8.0))
        gesture = arm(n, "gesture") + arm_jitter(rng, n, 14, (0.3, 1.2))
        set_arm(a, side, blend(rest, gesture, talk))
    a["chest_twist"] = a["chest_twist"] + wobble(rng, n, 10, (0.1, 0.4))
    a["neck_flex"] = a["neck_flex"] + wobble(rng, n, 5, (0.5, 1.5))
    _shift_weight(rng, a, n, 4)
    return Motion(a, heading, xy)


def eating(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Seated at a table, bringing one hand or the other to the mouth now and then, looking down at the plate."""
    a = standing(rng, n)
    seated(rng, n, a, np.ones(n))
    heading, xy = stay(rng, n, drift=0.01, turn=5.0)
    bite = events(rng, n, 2, rest_s=(2.0, 5.0), event_s=(0.4, 1.0))
    for i, side in enumerate("lr"):
        table = arm(n, "table") + arm_jitter(rng, n, 6, (0.2, 0.8))
        set_arm(a, side, blend(table, arm(n, "mouth"), bite[:, i]))
    a["neck_flex"] = a["neck_flex"] + 15 * (1 - bite.sum(axis=1))
    a["spine_flex"] = a["spine_flex"] + 10
    return Motion(a, heading, xy, planted=0.0)


def greeting(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Walking up to people, waving, shaking hands and bowing."""
    a = standing(rng, n)
    heading = rng.uniform(0, 360) + wobble(rng, n, 30, (0.02, 0.1))
    xy = steps(rng, n, hold_s=(2.0, 5.0), reach=0.5)
    wave, shake, bow = events(rng, n, 3, rest_s=(1.0, 3.0), event_s=(1.5, 3.0)).T
    t = np.arange(n) / FPS
    waving = rng.choice(["l", "r"])
    waved = arm(n, "wave")
    waved[:, 3] += 20 * np.sin(2 * np.pi * rng.uniform(2.0, 3.0) * t)
    set_arm(a, waving, blend(get_arm(a, waving), waved, wave))
    shaken = np.column_stack(
        [45 + 6 * np.sin(2 * np.pi * 3 * t), np.full(n, 5), np.full(n, 20), np.full(n, 45)]
    )
    set_arm(a, "r", blend(get_arm(a, "r"), shaken, shake))
    a["spine_flex"] = a["spine_flex"] + 18 * bow
    a["pelvis_pitch"] = 12 * bow
    a["neck_flex"] = a["neck_flex"] + 10 * bow
    return Motion(a, heading, xy)


def phoning(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Pacing with a phone held at the ear for long stretches, head tilted to it, free hand moving."""
    a = standing(rng, n)
    heading = rng.uniform(0, 360) + wobble(rng, n, 30, (0.02, 0.08))
    xy = steps(rng, n, hold_s=(3.0, 8.0), reach=0.6)
    side, other = ("l", "r") if rng.uniform() < 0.5 else ("r", "l")
    call = alternating(rng, n, off_s=(1.0, 3.0), on_s=(4.0, 10.0))
    set_arm(a, side, blend(get_arm(a, side), arm(n, "ear") + arm_jitter(rng, n, 3), call))
    set_arm(
        a, other, arm_choices(rng, n, ("hang", "hip", "gesture", "crossed", "behind")) + arm_jitter(rng, n, 5)
    )
    a["neck_lat"] = a["neck_lat"] + (8 if side == "r" else -8) * call
    return Motion(a, heading, xy)


def photo(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Raising a camera to the face with both hands, aiming (sometimes crouched), lowering it, turning."""
    a = standing(rng, n)
    k = keys_needed(n, 2.5)
    heading = rng.uniform(0, 360) + keyframes(
        rng, n, rng.uniform(-60, 60, (k, 1)), rng.uniform(2, 5, k), np.ones(k)
    )
    heading = heading[:, 0]
    xy = steps(rng, n, hold_s=(3.0, 8.0), reach=0.4)
    shoot = alternating(rng, n, off_s=(1.5, 4.0), on_s=(2.0, 5.0))
    for side in "lr":
        camera = arm(n, "camera") + arm_jitter(rng, n, 3, (0.3, 1.0))
        set_arm(a, side, blend(get_arm(a, side), camera, shoot))
    depth = rng.uniform(0, 40, k) * (rng.uniform(size=k) < 0.35)
    crouch(a, keyframes(rng, n, depth[:, None], rng.uniform(2, 6, k), rng.uniform(0.8, 1.4, k))[:, 0])
    a["chest_twist"] = a["chest_twist"] + shoot * wobble(rng, n, 8, (0.1, 0.4))
    return Motion(a, heading, xy)


def posing(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Striking random full-body poses, holding each for a few seconds, with smooth transitions."""
    a = standing(rng, n)
    k = keys_needed(n, 2.8)
    lo = np.array([-20, 0, -30, 0])
    hi = np.array([170, 150, 80, 140])
    hold, move = rng.uniform(2.0, 5.0, k), rng.uniform(0.8, 1.6, k)
    for side in "lr":
        set_arm(a, side, keyframes(rng, n, rng.uniform(lo, hi, (k, 4)), hold, move) + arm_jitter(rng, n, 1.5))
    trunk = keyframes(
        rng, n, rng.uniform([-10, -15, -25, -40, -15], [25, 15, 25, 40, 25], (k, 5)), hold, move
    )
    for i, dof in enumerate(("spine_flex", "spine_lat", "chest_twist", "neck_twist", "neck_flex")):
        a[dof] = a[dof] + trunk[:, i]
    lunge = rng.uniform([0, 0], [40, 50], (k, 2)) * (rng.uniform(size=(k, 1)) < 0.4)
    legs = keyframes(rng, n, np.column_stack([lunge, rng.uniform(0, 25, (k, 2))]), hold, move)
    lunging = rng.choice(["l", "r"])
    a[f"{lunging}_hip_flex"] = a[f"{lunging}_hip_flex"] + legs[:, 0]
    a[f"{lunging}_knee"] = a[f"{lunging}_knee"] + legs[:, 1]
    a["l_hip_abd"] = a["l_hip_abd"] + legs[:, 2]
    a["r_hip_abd"] = a["r_hip_abd"] + legs[:, 3]
    heading, xy = stay(rng, n)
    heading = heading + keyframes(rng, n, rng.uniform(-60, 60, (k, 1)), hold, move)[:, 0]
    return Motion(a, heading, xy)


def purchases(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Shopping: walking between spots, bending to reach low, reaching up to a shelf, inspecting items."""
    a = standing(rng, n)
    k = keys_needed(n, 3.0)
    xy = steps(rng, n, hold_s=(3.0, 7.0), reach=0.7)
    heading = rng.uniform(0, 360) + keyframes(
        rng, n, rng.uniform(-90, 90, (k, 1)), rng.uniform(3, 7, k), np.ones(k)
    )
    heading = heading[:, 0]
    low, high, inspect = events(rng, n, 3, rest_s=(1.0, 3.0), event_s=(1.0, 2.5), move_s=(0.7, 1.2)).T
    for side in "lr":
        set_arm(a, side, blend(get_arm(a, side), arm(n, "carry"), inspect))
    reaching = rng.choice(["l", "r"])
    reach_low = np.broadcast_to(np.array([75.0, 10.0, 10.0, 15.0]), (n, 4))
    reach_high = np.broadcast_to(np.array([115.0, 15.0, 0.0, 15.0]), (n, 4))
    arm_track = blend(get_arm(a, reaching), reach_low, low)
    set_arm(a, reaching, blend(arm_track, reach_high, high))
    a["pelvis_pitch"] = 35 * low
    a["spine_flex"] = a["spine_flex"] + 20 * low
    crouch(a, 15 * low)
    a["neck_flex"] = a["neck_flex"] - 15 * high + 20 * inspect
    return Motion(a, heading, xy)


def sitting(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Seated on a chair throughout; trunk leaning and twisting, arms moving between resting and busy postures."""
    a = standing(rng, n)
    seated(rng, n, a, np.ones(n))
    heading, xy = stay(rng, n, drift=0.01, turn=8.0)
    for side in "lr":
        poses = ("lap", "table", "crossed", "gesture", "ear", "hip")
        set_arm(a, side, arm_choices(rng, n, poses, (3.0, 8.0)) + arm_jitter(rng, n, 5))
    a["spine_twist"] = a["spine_twist"] + wobble(rng, n, 10, (0.03, 0.2))
    a["spine_lat"] = a["spine_lat"] + wobble(rng, n, 5, (0.03, 0.2))
    a["chest_flex"] = a["chest_flex"] + wobble(rng, n, 6, (0.05, 0.3))
    a["neck_twist"] = a["neck_twist"] + wobble(rng, n, 15, (0.05, 0.3))
    return Motion(a, heading, xy, planted=0.0)


def sitting_down(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Sitting down onto a chair and standing up again: trunk leans forward and arms reach out in transit."""
    a = standing(rng, n)
    level = alternating(rng, n, off_s=(1.0, 3.0), on_s=(2.0, 6.0), move_s=(1.2, 2.0))
    seated(rng, n, a, level)
    transit = np.sin(np.pi * level)
    a["pelvis_pitch"] = 25 * transit
    a["spine_flex"] = a["spine_flex"] + 20 * transit
    for side in "lr":
        a[f"{side}_sh_flex"] = a[f"{side}_sh_flex"] + 35 * transit
        a[f"{side}_elbow"] = a[f"{side}_elbow"] + 20 * level
    heading, xy = stay(rng, n, drift=0.02)
    return Motion(a, heading, xy, planted=1.0 - level)


def smoking(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Standing, raising the cigarette hand to the mouth every few seconds, head tipping back on each draw."""
    a = standing(rng, n)
    heading, xy = stay(rng, n)
    side, other = ("l", "r") if rng.uniform() < 0.5 else ("r", "l")
    puff = alternating(rng, n, off_s=(3.0, 8.0), on_s=(1.0, 2.5), move_s=(0.6, 1.0))
    holding = arm_choices(rng, n, ("hang", "table", "gesture")) + arm_jitter(rng, n, 4)
    set_arm(a, side, blend(holding, arm(n, "mouth"), puff))
    set_arm(a, other, arm_choices(rng, n, ("hang", "crossed", "hip", "behind")) + arm_jitter(rng, n, 3))
    a["neck_flex"] = a["neck_flex"] - 10 * puff
    _shift_weight(rng, a, n, 3)
    return Motion(a, heading, xy)


def waiting(rng: np.random.Generator, n: int, body: Body) -> Motion:
    """Standing around: slow weight shifts with the free knee relaxing, arms re-arranged, looking about."""
    a = standing(rng, n)
    heading = rng.uniform(0, 360) + wobble(rng, n, 25, (0.02, 0.08))
    xy = steps(rng, n, hold_s=(5.0, 12.0), reach=0.3)
    for side in "lr":
        set_arm(
            a,
            side,
            arm_choices(rng, n, ("hang", "crossed", "behind", "hip"), (4.0, 10.0)) + arm_jitter(rng, n, 3),
        )
    _shift_weight(rng, a, n, 6)
    a["neck_twist"] = a["neck_twist"] + wobble(rng, n, 25, (0.03, 0.15))
    return Motion(a, heading, xy)


def _shift_weight(rng: np.random.Generator, a: dict[str, np.ndarray], n: int, amp: float) -> None:
    """Move the pelvis over one foot and back; the unloaded knee softens."""
    w = wobble(rng, n, amp, (0.03, 0.12))
    a["l_hip_abd"] = a["l_hip_abd"] + w
    a["r_hip_abd"] = a["r_hip_abd"] - w
    a["pelvis_roll"] = a["pelvis_roll"] + 0.5 * w
    a["l_knee"] = a["l_knee"] + 1.5 * np.maximum(w, 0)
    a["r_knee"] = a["r_knee"] + 1.5 * np.maximum(-w, 0)


ACTION_PROGRAMS = {
    "Directions": directions,
    "Discussion": discussion,
    "Eating": eating,
    "Greeting": greeting,
    "Phoning": phoning,
    "Photo": photo,
    "Posing": posing,
    "Purchases": purchases,
    "Sitting": sitting,
    "SittingDown": sitting_down,
    "Smoking": smoking,
    "Waiting": waiting,
    "WalkDog": walk_dog,
    "Walking": walking,
    "WalkTogether": walk_together,
}
"""Motion program of each Human3.6M action: (rng, frames, body) -> Motion."""


# ---------------------------------------------------------------------------------------------------------------
# Placing the body in the world
# ---------------------------------------------------------------------------------------------------------------


def place(motion: Motion, body: Body) -> tuple[np.ndarray, np.ndarray]:
    """World joints (N, 17, 3) in metres and bone frames: pose, then horizontal track, then feet on the floor.

    Where ``motion.planted`` is 1 the midpoint of the feet stays on the track; where it is 0 the pelvis does,
    at the mean offset from the feet it has in those frames (in the body's heading frame), so that blending
    the two (sitting down) moves the pelvis continuously. The root height is set per frame so that the lower
    foot touches z = 0.
    """
    rel, frames = forward_kinematics(motion.angles, motion.heading, body)
    feet = rel[:, [L_FOOT, R_FOOT]]
    turn = rotation(2, motion.heading)[:, :2, :2]
    feet_body = np.einsum("nji,nj->ni", turn, feet[:, :, :2].mean(axis=1))  # feet midpoint, heading frame
    planted = np.broadcast_to(np.asarray(motion.planted, dtype=np.float64), (len(rel),))[:, None]
    free = planted[:, 0] < 0.5
    pelvis_fixed = feet_body[free].mean(axis=0) if free.any() else np.zeros(2)
    offset = np.einsum("nij,nj->ni", turn, planted * feet_body + (1.0 - planted) * pelvis_fixed)
    root = np.column_stack([motion.xy - offset, -feet[:, :, 2].min(axis=1)])
    return rel + root[:, None], frames


# 32-joint mocap indices of the joints the 17-joint layout drops, and how they are filled.
_TOES = ((3, 4, 5), (8, 9, 10))  # (ankle, toe, toe tip) for right, left
_HANDS = (
    (19, 20, 21, 22, 23),
    (27, 28, 29, 30, 31),
)  # (wrist, thumb, thumb tip, hand, hand tip), left, right


def to_mocap32(pos: np.ndarray, frames: np.ndarray, body: Body) -> np.ndarray:
    """(N, 17, 3) -> (N, 32, 3) in the full mocap layout, dropped joints filled from their neighbours.

    Lower spine: halfway between pelvis and spine; the two shoulder anchors: at the thorax; toes: forward of
    the ankle along the shank's facing, at ankle height (never below the floor); hand points: along the forearm.
    """
    out = np.empty((len(pos), 32, 3))
    out[:, list(H36M_JOINTS_KEPT_FROM_32)] = pos
    out[:, 11] = 0.5 * (pos[:, 0] + pos[:, 7])
    out[:, 16] = pos[:, 8]
    out[:, 24] = pos[:, 8]
    s = body.height_scale
    for (ankle, toe, tip), shank in zip(_TOES, (3, 6), strict=True):
        facing = frames[:, shank, :, 0] + 0.3 * frames[:, 0, :, 0]
        facing[:, 2] = 0.0
        facing /= np.linalg.norm(facing, axis=1, keepdims=True)
        out[:, toe] = out[:, ankle] + 0.14 * s * facing
        out[:, tip] = out[:, ankle] + 0.19 * s * facing
    for wrist, *hand in _HANDS:
        forearm = out[:, wrist] - out[:, wrist - 1]
        forearm /= np.linalg.norm(forearm, axis=1, keepdims=True)
        for joint, reach in zip(hand, (0.04, 0.07, 0.08, 0.12), strict=True):
            out[:, joint] = out[:, wrist] + reach * s * forearm
    return out
