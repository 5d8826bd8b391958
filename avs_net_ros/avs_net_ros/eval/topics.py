"""Topic names an evaluation reads from a bag, and how they are matched to the bag's topics."""

from dataclasses import dataclass, fields
from typing import Dict, Iterable, List, Optional

from avs_net_ros.core.errors import AvsInputError


class BagTopicsError(AvsInputError):
    """A bag lacks topics the evaluation needs (the message lists what it has)."""


@dataclass(frozen=True)
class BagTopics:
    """Topic names in the bag (the nodes' defaults; a leading '/' is optional)."""

    image: str = '/image'
    camera_info: str = '/camera_info'
    echoes: str = '/echoes'
    ground_truth: str = '/depth/ground_truth'
    metric: str = '/depth/metric'
    pseudo_dense: str = '/depth/pseudo_dense'
    relative: str = '/depth/relative'

    def resolved(self) -> 'BagTopics':
        """Return a copy with every name made absolute."""
        return BagTopics(**{f.name: normalize(getattr(self, f.name)) for f in fields(self)})


def normalize(topic: str) -> str:
    """Return ``topic`` with exactly one leading '/'."""
    if not topic or not topic.strip('/'):
        raise AvsInputError(f'empty topic name {topic!r}')
    return '/' + topic.strip().lstrip('/')


def require_topics(available: Dict[str, str], wanted: Dict[str, str],
                   optional: Iterable[str] = (), bag: str = 'bag') -> Dict[str, str]:
    """Check that the bag has every ``wanted`` role's topic; return role -> topic found.

    Args:
        available: topic -> message type of the bag.
        wanted: role -> topic name.
        optional: roles that may be absent (left out of the result).
        bag: the bag's name for the message.

    Raises:
        BagTopicsError: listing the missing topics and every topic the bag has.

    """
    optional = set(optional)
    found: Dict[str, str] = {}
    missing: List[str] = []
    for role, topic in wanted.items():
        t = normalize(topic)
        if t in available:
            found[role] = t
        elif role not in optional:
            missing.append(f'{t} ({role})')
    if missing:
        have = ', '.join(f'{t} [{m}]' for t, m in sorted(available.items())) or 'none'
        raise BagTopicsError(f'{bag} lacks the topic(s) {", ".join(missing)}; it has: {have}. '
                             f'Name the right topics with the --*-topic options.')
    return found


def first_present(available: Dict[str, str], names: Iterable[str]) -> Optional[str]:
    """Return the first of ``names`` the bag has, or None."""
    for n in names:
        if normalize(n) in available:
            return normalize(n)
    return None
