"""Score predictions recorded in a bag (``depth/metric`` etc.) against its ground truth.

This is how a live replay is scored (the nodes' outputs are recorded, then read back), and it
lets any bag that carries both predictions and ground truth be scored without the models.
"""

import time
from typing import Optional, Sequence

from avs_net_ros.eval.bagio import BagFrames
from avs_net_ros.eval.offline import _progress, EvalResult, Panel, prefetch
from avs_net_ros.eval.scoring import RecordedScorer
from avs_net_ros.eval.topics import BagTopics

#: Roles of recorded predictions, in the order they are reported.
PREDICTION_ROLES = ('metric', 'pseudo_dense', 'relative')


def score_recorded(path: str, roles: Sequence[str] = ('metric', 'pseudo_dense'),
                   topics: BagTopics = BagTopics(), max_depth: float = 12.0,
                   min_depth: float = 1e-3, slop_s: float = 0.0,
                   panel_frames: Sequence[int] = (), progress: bool = True,
                   max_frames: Optional[int] = None) -> EvalResult:
    """Score the recorded ``roles`` of the bag at ``path``; the first role is required.

    Each prediction is paired with the ground truth of the same header stamp (within
    ``slop_s``); the other roles are scored when present. The result's ``recorded`` holds
    {role: averaged metrics}.

    Raises:
        BagReadError / BagTopicsError: unreadable bag, or the first role or the ground truth
            is missing.

    """
    roles = list(roles)
    if not roles or any(r not in PREDICTION_ROLES for r in roles):
        raise ValueError(f'roles must be among {PREDICTION_ROLES}, got {roles}')
    scorer = RecordedScorer(max_depth, min_depth)
    panels = []
    t0 = time.perf_counter()
    with BagFrames(path, topics, key=roles[0], need=('ground_truth',),
                   want=roles[1:] + ['image'], slop_s=slop_s) as bag:
        with _progress(bag.message_count(roles[0]), progress, 'score') as bar:
            for frame in prefetch(bag, 4):
                scorer.add(frame.stamp_ns, frame.predictions, frame.ground_truth)
                if frame.index in panel_frames and frame.rgb is not None:
                    panels.append(Panel(frame.index, frame.stamp_ns, frame.rgb,
                                        frame.ground_truth, dict(frame.predictions)))
                bar.update(1)
                if max_frames and len(scorer.per_frame) >= max_frames:
                    break
    wall = time.perf_counter() - t0
    res = EvalResult(bag=bag.report, max_depth=max_depth, min_depth=min_depth, variants=[],
                     relatives={}, per_frame=scorer.per_frame, panels=panels)
    res.recorded = scorer.result()
    res.timing = {'wall_s': wall, 'frames_per_s': len(scorer.per_frame) / wall if wall else 0.0}
    return res
