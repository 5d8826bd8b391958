"""The sound-card backend: one continuous full-duplex sounddevice (PortAudio) stream.

A new stream per chirp would stall about 1 s and shift the latency in 512-sample steps
(feasibility.md section 1a), so the stream is opened once and kept; the engine reopens it only
after it is lost. sounddevice is imported when a stream is opened, so this module (and the
engine) import without PortAudio.
"""

import threading
from typing import Any, Callable, List, Optional, Tuple, Union

from avs_net_ros.audio.settings import SonarSettings

import numpy as np


class AudioDeviceError(RuntimeError):
    """No usable audio device; the message names the devices that exist."""


def _sd() -> Any:
    try:
        import sounddevice
    except OSError as e:  # PortAudio library missing
        raise AudioDeviceError(f'sounddevice cannot load PortAudio ({e}); install the '
                               f'system package libportaudio2') from e
    return sounddevice


_open_streams = 0  # streams of this process opened by SoundDeviceBackend


def refresh_devices() -> bool:
    """Re-scan audio devices (PortAudio lists only what existed when it was initialised).

    Re-initialising PortAudio would kill open streams, so this does nothing (and returns
    False) while a ``SoundDeviceBackend`` stream of this process is open.
    """
    if _open_streams:
        return False
    sd = _sd()
    sd._terminate()
    sd._initialize()
    return True


def list_devices() -> List[dict]:
    """Return PortAudio's devices as dicts with index, name, hostapi, inputs, outputs."""
    sd = _sd()
    apis = sd.query_hostapis()
    return [{'index': d['index'], 'name': d['name'], 'hostapi': apis[d['hostapi']]['name'],
             'inputs': d['max_input_channels'], 'outputs': d['max_output_channels'],
             'default_samplerate': d['default_samplerate']} for d in sd.query_devices()]


def describe_devices(devices: Optional[List[dict]] = None) -> str:
    """Return the device list as one readable line, or why it is empty."""
    devices = list_devices() if devices is None else devices
    if not devices:
        return ('PortAudio lists no audio devices at all (no sound card and no audio server; '
                'for a loopback without hardware run scripts/audio_server.sh start pulse)')
    return '; '.join(f"[{d['index']}] '{d['name']}' ({d['hostapi']}, {d['inputs']} in / "
                     f"{d['outputs']} out)" for d in devices)


def find_device(spec: Union[str, int, None], inputs: int, outputs: int) -> int:
    """Return the index of the device for ``spec`` with enough channels.

    ``spec``: an index, a name (exact, else every word must appear in 'name hostapi',
    case-insensitive, as in sounddevice), or None/'' for the default device.

    Raises:
        AudioDeviceError: nothing matches; the message lists the devices that exist.

    """
    sd = _sd()
    devices = list_devices()
    need = f'{inputs} input and {outputs} output channel(s)'

    def fits(d: dict) -> bool:
        return d['inputs'] >= inputs and d['outputs'] >= outputs

    if spec is None or (isinstance(spec, str) and not spec.strip()):
        default = sd.default.device
        idx = [default[0], default[1]] if isinstance(default, (list, tuple)) else [default] * 2
        for i in idx:
            if i is not None and 0 <= int(i) < len(devices) and fits(devices[int(i)]):
                return int(i)
        raise AudioDeviceError(f'no default audio device with {need}; devices: '
                               f'{describe_devices(devices)}')
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        i = int(spec)
        if 0 <= i < len(devices) and fits(devices[i]):
            return i
        raise AudioDeviceError(f'audio device index {i} does not exist or lacks {need}; '
                               f'devices: {describe_devices(devices)}')
    name = spec.strip().lower()
    exact = [d for d in devices if d['name'].lower() == name and fits(d)]
    words = name.split()
    partial = [d for d in devices if fits(d) and all(
        w in f"{d['name']} {d['hostapi']}".lower() for w in words)]
    found = exact or partial
    if not found:
        raise AudioDeviceError(f'no audio device matches {spec!r} with {need}; devices: '
                               f'{describe_devices(devices)}')
    return int(found[0]['index'])


BlockHandler = Callable[[np.ndarray, np.ndarray, bool], None]


class SoundDeviceBackend:
    """Full-duplex PortAudio stream on one device, float32, callback-driven."""

    name = 'sounddevice'

    def __init__(self, device: Union[str, int, None] = None, blocksize: int = 512,
                 latency: Union[str, float, None] = None, rescan: bool = True,
                 close_timeout: float = 3.0) -> None:
        """Configure; nothing is opened yet.

        Args:
            device: Device index or name (see ``find_device``); None = default.
            blocksize: Frames per callback (0 = PortAudio's choice, e.g. the JACK period).
            latency: PortAudio suggested latency ('low', 'high' or seconds); None = default.
            rescan: Re-scan devices before the first opening, so a server started after
                import is seen, and on reopening when the device is no longer listed.
            close_timeout: Longest wait for PortAudio to close a stream (a lost PulseAudio
                server can make it hang).

        """
        self.device = device
        self.blocksize = int(blocksize)
        self.latency = latency
        self.rescan = rescan
        self.close_timeout = close_timeout
        self.error: Optional[str] = None
        self.device_index: Optional[int] = None
        self.device_name = ''
        self._stream: Any = None
        self._opened_once = False

    def start(self, settings: SonarSettings, process: BlockHandler) -> None:
        """Open and start the stream; ``process`` runs in the audio callback.

        Raises:
            AudioDeviceError: the device does not exist, lacks channels, or refuses the
                sample rate; the message names the devices that exist.

        """
        sd = _sd()
        global _open_streams
        n_in, n_out = settings.input_channels, settings.num_output_channels
        if self.rescan and not self._opened_once:
            refresh_devices()
        try:
            index = find_device(self.device, n_in, n_out)
        except AudioDeviceError:
            # A reopen re-scans only when the device is not listed (e.g. a replugged card):
            # re-initialising PortAudio after a JACK server died would abort the process.
            if not (self.rescan and self._opened_once and refresh_devices()):
                raise
            index = find_device(self.device, n_in, n_out)
        info = sd.query_devices(index)
        self.device_index, self.device_name = index, info['name']
        self.error = None

        def callback(indata: np.ndarray, outdata: np.ndarray, frames: int, _time: Any,
                     status: Any) -> None:
            try:
                process(indata, outdata, bool(status.input_overflow or status.output_underflow
                                              or status.input_underflow
                                              or status.output_overflow))
            except Exception as e:  # noqa: B902 - an exception would kill the stream silently
                self.error = f'audio callback failed: {e!r}'
                outdata.fill(0)
                raise sd.CallbackAbort from e

        def finished() -> None:
            if self.error is None:
                self.error = 'the stream finished (device gone or server stopped)'

        try:
            stream = sd.Stream(samplerate=settings.sample_rate, blocksize=self.blocksize,
                               device=(index, index), channels=(n_in, n_out), dtype='float32',
                               latency=self.latency, callback=callback,
                               finished_callback=finished)
            stream.start()
        except (sd.PortAudioError, ValueError) as e:
            raise AudioDeviceError(
                f'cannot open a {settings.sample_rate} Hz duplex stream ({n_in} in / {n_out} '
                f"out) on [{index}] '{info['name']}': {e}; devices: "
                f'{describe_devices()}') from e
        self._stream = stream
        self._opened_once = True
        _open_streams += 1

    def is_alive(self) -> bool:
        """Whether the stream is open, running and error-free."""
        s = self._stream
        return s is not None and self.error is None and bool(s.active)

    def stop(self) -> None:
        """Abort and close the stream; gives up waiting after ``close_timeout``."""
        global _open_streams
        s, self._stream = self._stream, None
        if s is None:
            return
        _open_streams -= 1

        def _close() -> None:
            try:
                s.abort(ignore_errors=True)
                s.close(ignore_errors=True)
            except Exception:  # noqa: B902 - the device may already be gone
                pass

        t = threading.Thread(target=_close, name='sonar-close', daemon=True)
        t.start()
        t.join(self.close_timeout)

    def describe(self) -> Tuple[Optional[int], str]:
        """Return (index, name) of the opened device."""
        return self.device_index, self.device_name
