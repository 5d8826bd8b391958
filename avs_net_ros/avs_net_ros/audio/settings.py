"""What the sonar emits, how it cuts echoes and how fast it may chirp (``SonarSettings``)."""

from dataclasses import asdict, dataclass, field
import math
from typing import Any, Dict, Optional, Tuple

from avs_net_ros.core.acoustics import (BATVISION_SPEED_OF_SOUND, ChirpConfig,
                                        echo_window_samples, make_chirp)
from avs_net_ros.core.errors import AvsInputError

import numpy as np


@dataclass(frozen=True)
class SonarSettings:
    """Settings of one sonar (speaker + two microphones) and of the echoes it produces.

    Attributes:
        chirp: The emitted chirp; its sample rate is the stream's.
        max_range: Range the echo window covers (m).
        speed_of_sound: Speed of sound used to size the window (m/s); BatVision's 340 keeps
            windows equal to the training data's.
        window_samples: Samples per echo, or None for the round trip to ``max_range``.
        lead_in_samples: Samples kept before the direct-path onset at the start of each echo.
        reverb_guard: Extra silence after each echo window before the next chirp (s), for the
            room's reverberation to decay.
        max_rate: Upper limit on the chirp rate (Hz); 0 = only the window and guard limit it.
        max_request_age: A chirp request (camera frame) older than this when the next chirp
            slot opens is dropped, so an echo is never stamped with a stale frame (s).
        max_latency: Longest device round-trip latency searched for the direct path (s).
        min_peak_ratio: Matched-filter peak over its median needed to accept a direct path.
        gain: Linear gain applied to the recorded echo before it is published.
        clip_level: Absolute sample value from which a recorded sample counts as clipped.
        channel_map: Input channels of the device for (left, right).
        output_channels: Output channels the chirp is played on.

    """

    chirp: ChirpConfig = field(default_factory=ChirpConfig)
    max_range: float = 30.0
    speed_of_sound: float = BATVISION_SPEED_OF_SOUND
    window_samples: Optional[int] = None
    lead_in_samples: int = 0
    reverb_guard: float = 0.05
    max_rate: float = 0.0
    max_request_age: float = 0.1
    max_latency: float = 0.25
    min_peak_ratio: float = 20.0
    gain: float = 1.0
    clip_level: float = 0.999
    channel_map: Tuple[int, int] = (0, 1)
    output_channels: Tuple[int, ...] = (0, 1)

    def __post_init__(self) -> None:
        """Reject settings that cannot work, naming the setting."""
        problems = []
        if not self.max_range > 0:
            problems.append(f'max_range must be > 0 m, got {self.max_range}')
        if not self.speed_of_sound > 0:
            problems.append(f'speed_of_sound must be > 0 m/s, got {self.speed_of_sound}')
        if self.window_samples is not None and self.window_samples <= 0:
            problems.append(f'window_samples must be > 0 (or None), got {self.window_samples}')
        if self.lead_in_samples < 0:
            problems.append(f'lead_in_samples must be >= 0, got {self.lead_in_samples}')
        for name in ('reverb_guard', 'max_rate', 'max_request_age', 'max_latency'):
            if not getattr(self, name) >= 0:
                problems.append(f'{name} must be >= 0, got {getattr(self, name)}')
        if not self.min_peak_ratio > 1:
            problems.append(f'min_peak_ratio must be > 1, got {self.min_peak_ratio}')
        if not (math.isfinite(self.gain) and self.gain > 0):
            problems.append(f'gain must be a positive number, got {self.gain}')
        if not 0 < self.clip_level <= 1:
            problems.append(f'clip_level must be in (0, 1], got {self.clip_level}')
        if len(self.channel_map) != 2 or min(self.channel_map) < 0 or \
                self.channel_map[0] == self.channel_map[1]:
            problems.append(f'channel_map must be two different input channels >= 0 '
                            f'(left, right), got {tuple(self.channel_map)}')
        if not self.output_channels or min(self.output_channels) < 0:
            problems.append(f'output_channels must list output channels >= 0, got '
                            f'{tuple(self.output_channels)}')
        if self.window_samples is None and not problems:
            if echo_window_samples(self.max_range, self.sample_rate, self.speed_of_sound) \
                    <= self.lead_in_samples:
                problems.append('the echo window is not longer than lead_in_samples')
        if problems:
            raise AvsInputError('invalid sonar settings: ' + '; '.join(problems))

    @property
    def sample_rate(self) -> int:
        """Stream sample rate (Hz), the chirp's."""
        return self.chirp.sample_rate

    @property
    def window(self) -> int:
        """Samples per echo."""
        if self.window_samples is not None:
            return int(self.window_samples)
        return echo_window_samples(self.max_range, self.sample_rate, self.speed_of_sound)

    @property
    def input_channels(self) -> int:
        """Input channels the stream must open to read ``channel_map``."""
        return max(self.channel_map) + 1

    @property
    def num_output_channels(self) -> int:
        """Output channels the stream must open to play on ``output_channels``."""
        return max(self.output_channels) + 1

    @property
    def max_latency_samples(self) -> int:
        """``max_latency`` in samples."""
        return int(math.ceil(self.max_latency * self.sample_rate))

    @property
    def period_samples(self) -> int:
        """Fewest samples between two chirps: the window plus the reverberation guard.

        The echo window ends ``window - lead_in`` samples after the direct path, so a chirp
        every ``window + guard`` samples never lands in the previous echo; ``max_rate`` may
        only slow that down.
        """
        period = self.window + int(math.ceil(self.reverb_guard * self.sample_rate))
        if self.max_rate > 0:
            period = max(period, int(math.ceil(self.sample_rate / self.max_rate)))
        return max(period, self.chirp.num_samples + 1)

    @property
    def acquisition_period_samples(self) -> int:
        """Chirp period while the device latency is unknown.

        Until the first direct path is found, the search reaches ``max_latency`` past each
        chirp; spacing chirps further apart than that keeps the next chirp out of the search,
        so the latency found is this chirp's.
        """
        reach = self.max_latency_samples + max(self.window - self.lead_in_samples,
                                               self.chirp.num_samples)
        return max(self.period_samples, reach + self.chirp.num_samples + 1)

    @property
    def rate_limit(self) -> float:
        """Highest chirp rate these settings allow (Hz)."""
        return self.sample_rate / self.period_samples

    def chirp_waveform(self) -> np.ndarray:
        """Return the chirp (1-D float32), the matched-filter template."""
        return make_chirp(self.chirp)

    def emission(self) -> np.ndarray:
        """Return what is played per chirp: (samples, output channels) float32."""
        c = self.chirp_waveform()
        out = np.zeros((c.size, self.num_output_channels), np.float32)
        out[:, list(self.output_channels)] = c[:, None]
        return out

    def info(self, backend: str, latency_samples: Optional[int] = None) -> Dict[str, Any]:
        """Return the echo settings each EchoFrame carries (``messages.ECHO_INFO_KEYS``)."""
        return {
            'sample_rate': self.sample_rate,
            'channels': 2,
            'window_samples': self.window,
            'lead_in_samples': int(self.lead_in_samples),
            'speed_of_sound': float(self.speed_of_sound),
            'max_range': float(self.max_range),
            'chirp': asdict(self.chirp),
            'alignment': {
                'method': 'matched_filter',
                'latency_samples': None if latency_samples is None else int(latency_samples),
                'peak_ratio': float(self.min_peak_ratio),
                'max_latency_samples': self.max_latency_samples,
            },
            'backend': backend,
            'gain': float(self.gain),
            'channel_map': list(self.channel_map),
            'rate_limit': self.rate_limit,
        }
