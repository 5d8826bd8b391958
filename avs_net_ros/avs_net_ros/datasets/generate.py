"""Generate a simulated BatVision-layout dataset (BV2 or BV1), deterministic per seed.

Example (a small BV2-like set from a fresh clone)::

    python -m avs_net_ros.datasets.generate --out /tmp/SimBV2 --train 40 --val 10 --test 10

Each split gets its own locations (scenes), so validation and test scenes are never seen in
training; every location is one robot trajectory of consecutive frames (``--frames`` per
location). The same arguments give the same bytes, whatever ``--workers`` is. ``--motion robot``
drives the camera as a robot at ``--frame-rate`` (``avs_net_ros.sim.motion``: bounded speed,
turn rate and accelerations, stops), for sequences whose frames overlap (self-supervised
triplets); the default is the family's 5 Hz wander. Besides the
layout's files, each BV2 location folder (BV1 date folder) holds ``sim_meta.yaml`` with the
scene, family, acoustic settings (emit sample, lead-in, chirp) and the camera poses.
"""

import argparse
from dataclasses import asdict, replace
import math
from multiprocessing import get_context
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets import bv1, bv2
from avs_net_ros.datasets.simulate import (acoustic_config, BASE_TIME, FRAME_PERIOD,
                                           LocationSimulator)
from avs_net_ros.runtime.memory import keep_freed_memory
from avs_net_ros.sim.families import get_family, load_family_file, SceneFamily
from avs_net_ros.sim.motion import RobotMotion

from tqdm import tqdm
import yaml

DEFAULT_SIZE = {'bv2': (1280, 720), 'bv1': (640, 360)}
DEFAULT_FAMILY = {'bv2': 'bv2_like', 'bv1': 'bv1_like'}

# Per-process cache: chunks of one location reuse its sampled scene and cached echoes.
_SIMS: Dict[Tuple, LocationSimulator] = {}


def _location_name(layout: str, split: str, loc: int) -> str:
    return f'Sim_{split}_{loc:03d}'


def _time(split: str, loc: int, frame: int, period: float = FRAME_PERIOD) -> float:
    day = ('train', 'val', 'test').index(split) * 200 + loc
    return BASE_TIME + day * 86400.0 + frame * period


def _period(motion: Optional[RobotMotion]) -> float:
    return FRAME_PERIOD if motion is None else 1.0 / motion.frame_rate


def _work(task: Tuple) -> Tuple[str, int, List[List[str]]]:
    (layout, family, seed, split, loc, n_frames, frames, width, height, quality, out,
     acoustic, motion) = task
    key = (layout, seed, split, loc)
    sim = _SIMS.get(key)
    if sim is None:
        _SIMS.clear()
        sim = LocationSimulator(family, layout, seed, split, loc, n_frames, width, height,
                                acoustics=acoustic, motion=motion)
        _SIMS[key] = sim
    rows = []
    name = _location_name(layout, split, loc)
    for k, inst in sim.frames(frames):
        t = _time(split, loc, k, _period(motion))
        if layout == 'bv2':
            depth_mm = bv2.encode_depth_mm(inst.depth, inst.valid)
            bv2.write_instance(out, name, k, inst.rgb, depth_mm, inst.audio,
                               sim.world.sample_rate, quality)
            rows.append(bv2.csv_row(name, k, t))
        else:
            depth_mm = bv1.encode_depth_mm(inst.depth, inst.valid, family.sensor_max_range)
            rows.append(bv1.write_instance(out, k, t, inst.rgb, depth_mm, inst.audio, quality))
    return split, loc, rows


def _meta(layout: str, family: SceneFamily, seed: int, sim: LocationSimulator,
          motion: Optional[RobotMotion] = None) -> dict:
    ac = sim.world.acoustics
    flight = sim.world.rig.direct_path_samples(ac.sample_rate, ac.speed_of_sound)
    scene = sim.scene
    return {
        'layout': layout, 'seed': seed, 'family': family.to_dict(),
        'scene': {'name': scene.name, 'floor_plan': scene.floor_plan.round(4).tolist(),
                  'height': round(scene.height, 4), 'wall_materials': list(scene.wall_materials),
                  'floor_material': scene.floor_material,
                  'ceiling_material': scene.ceiling_material,
                  'boxes': [{k: (round(v, 4) if isinstance(v, float) else v)
                             for k, v in asdict(b).items()} for b in scene.boxes],
                  'scale': round(scene.scale, 4), 'scale_ambiguity': scene.scale_ambiguity,
                  **_dressing(scene)},
        'audio': {'sample_rate': ac.sample_rate, 'num_samples': ac.num_samples,
                  'emit_sample': ac.emit_sample,
                  'direct_path_onset': int(round(ac.emit_sample + flight)),
                  'lead_in': int(round(ac.emit_sample + flight)),
                  'speed_of_sound': round(ac.speed_of_sound, 3),
                  'chirp': asdict(ac.chirp), 'max_order': ac.max_order,
                  'box_order': ac.box_order, 'ray_tracing': ac.ray_tracing},
        'rig': {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(sim.world.rig).items()},
        'camera': {'width': sim.width, 'height': sim.height,
                   'hfov_deg': sim.world.hfov_deg},
        'frame_period': _period(motion),
        **({} if motion is None else {'motion': motion.to_dict()}),
        'poses': [[round(p.x, 4), round(p.y, 4), round(p.z, 4), round(p.yaw, 5),
                   round(p.pitch, 5)] for p in sim.poses],
    }


def _dressing(scene) -> dict:
    """Return a dressed scene's texture contrast and posters (nothing for an undressed one)."""
    if scene.texture_contrast == 1.0 and not scene.posters:
        return {}
    return {'texture_contrast': round(scene.texture_contrast, 4),
            'posters': [{k: (round(v, 4) if isinstance(v, float) else v)
                         for k, v in asdict(p).items()} for p in scene.posters]}


def generate(out: str, layout: str = 'bv2', counts: Optional[Dict[str, int]] = None,
             seed: int = 0, family: Optional[SceneFamily] = None,
             size: Optional[Tuple[int, int]] = None, frames_per_location: int = 50,
             workers: int = 1, jpeg_quality: int = 75, chunk: int = 5,
             acoustic_overrides: Optional[dict] = None, progress: bool = True,
             motion: Optional[RobotMotion] = None) -> Dict:
    """Write a simulated dataset to ``out``; return {split: number of instances}.

    ``motion`` drives the camera as a robot (see the module docstring).
    """
    if layout not in ('bv1', 'bv2'):
        raise ValueError(f"unknown layout {layout!r}; expected 'bv1' or 'bv2'")
    counts = counts or {'train': 10, 'val': 5, 'test': 5}
    family = family or get_family(DEFAULT_FAMILY[layout])
    width, height = size or DEFAULT_SIZE[layout]
    if frames_per_location < 1:
        raise ValueError('frames_per_location must be >= 1')
    if os.path.isdir(out) and os.listdir(out):
        raise FileExistsError(f'output folder {out} exists and is not empty')
    os.makedirs(out, exist_ok=True)
    acoustic = acoustic_config(layout, **(acoustic_overrides or {}))
    tasks, plan = [], []
    for split in ('train', 'val', 'test'):
        n = int(counts.get(split, 0))
        for loc in range(math.ceil(n / frames_per_location)):
            n_frames = min(frames_per_location, n - loc * frames_per_location)
            plan.append((split, loc, n_frames))
            for a in range(0, n_frames, chunk):
                tasks.append((layout, family, seed, split, loc, n_frames,
                              list(range(a, min(a + chunk, n_frames))), width, height,
                              jpeg_quality, out, acoustic, motion))
    rows: Dict[Tuple[str, int], List[List[str]]] = {(s, loc): [] for s, loc, _ in plan}
    total = sum(len(t[6]) for t in tasks)
    bar = tqdm(total=total, unit='inst', desc=f'{layout} {os.path.basename(out)}',
               disable=not progress)
    if workers > 1 and len(tasks) > 1:
        with get_context('fork').Pool(workers) as pool:
            for split, loc, r in pool.imap_unordered(_work, tasks):
                rows[(split, loc)].extend(r)
                bar.update(len(r))
    else:
        for task in tasks:
            split, loc, r = _work(task)
            rows[(split, loc)].extend(r)
            bar.update(len(r))
    bar.close()
    _SIMS.clear()
    for split, loc, n_frames in plan:
        sim = LocationSimulator(family, layout, seed, split, loc, n_frames, width, height,
                                acoustics=acoustic, motion=motion)
        meta = _meta(layout, family, seed, sim, motion)
        if layout == 'bv2':
            name = _location_name(layout, split, loc)
            bv2.write_split_csvs(out, name, {split: rows[(split, loc)]})
            path = os.path.join(out, name, 'sim_meta.yaml')
        else:
            path = os.path.join(out, bv1.date_folder(_time(split, loc, 0, _period(motion))),
                                'sim_meta.yaml')
        with open(path, 'w') as f:
            yaml.safe_dump(meta, f, sort_keys=True)
    if layout == 'bv1':
        for split in ('train', 'val', 'test'):
            bv1.write_split_csv(out, split, [r for (s, _), rs in rows.items() if s == split
                                             for r in rs])
    return {s: int(counts.get(s, 0)) for s in ('train', 'val', 'test')}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='avs_generate_dataset', description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True, help='output root (must not exist or be empty)')
    p.add_argument('--layout', choices=('bv2', 'bv1'), default='bv2')
    p.add_argument('--family', default=None,
                   help='scene family: bv2_like or bv1_like (default: matches the layout)')
    p.add_argument('--family-config', default=None,
                   help="YAML file of family parameters ('base' names the family to start from)")
    p.add_argument('--no-scale-ambiguity', action='store_true',
                   help='keep metric size cues in the images (fixed doors, metric textures)')
    p.add_argument('--photometric-texture', type=float, default=None, metavar='FRACTION',
                   help='fraction of scenes dressed for photometric self-supervision: texture '
                        "contrast x3 and posters on the walls (default: the family's, 0 for "
                        'the built-in ones: the plain catalogue textures)')
    p.add_argument('--train', type=int, default=40)
    p.add_argument('--val', type=int, default=10)
    p.add_argument('--test', type=int, default=10)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--width', type=int, default=None, help='image width (bv2 1280, bv1 640)')
    p.add_argument('--height', type=int, default=None, help='image height (bv2 720, bv1 360)')
    p.add_argument('--frames', type=int, default=50,
                   help='frames per location (one robot trajectory)')
    p.add_argument('--motion', choices=('wander', 'robot'), default='wander',
                   help="camera motion: the family's 5 Hz wander, or a robot's (for triplets)")
    p.add_argument('--frame-rate', type=float, default=None,
                   help='frames per second of --motion robot (default 10)')
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    p.add_argument('--jpeg-quality', type=int, default=75,
                   help='JPEG quality (75 = the real BV2 quantisation tables)')
    p.add_argument('--max-order', type=int, default=None, help='image-source order')
    p.add_argument('--ray-tracing', action='store_true', help='add ray-traced late reverb')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the generator command line."""
    args = _parser().parse_args(argv)
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    if args.family_config:
        family = load_family_file(args.family_config)
    else:
        family = get_family(args.family or DEFAULT_FAMILY[args.layout])
    if args.no_scale_ambiguity:
        family = replace(family, scale_ambiguity=False)
    if args.photometric_texture is not None:
        try:
            family = replace(family, photometric_texture=args.photometric_texture)
        except AvsInputError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
    w, h = DEFAULT_SIZE[args.layout]
    overrides = {}
    if args.max_order is not None:
        overrides['max_order'] = args.max_order
    if args.ray_tracing:
        overrides['ray_tracing'] = True
    try:
        motion = None
        if args.motion == 'robot':
            motion = RobotMotion(**({} if args.frame_rate is None
                                    else {'frame_rate': args.frame_rate}))
        elif args.frame_rate is not None:
            raise ValueError('--frame-rate applies to --motion robot only')
        done = generate(args.out, args.layout, {'train': args.train, 'val': args.val,
                                                'test': args.test},
                        args.seed, family, (args.width or w, args.height or h), args.frames,
                        args.workers, args.jpeg_quality, acoustic_overrides=overrides,
                        progress=not args.quiet, motion=motion)
    except (FileExistsError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'wrote {args.layout} dataset to {args.out}: {done}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
