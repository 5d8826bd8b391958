"""A thread that runs one job whenever it is woken: where nodes do their heavy work.

Callbacks of our nodes only store messages and wake a ``WakeableWorker``; model inference and
echo simulation run on its thread, so the node's executor stays free to take every incoming
message (ONNX Runtime and NumPy release the GIL while they compute). See ``spin`` for why the
nodes do not use rclpy's MultiThreadedExecutor for this.
"""

import threading
from typing import Callable, Optional


class WakeableWorker:
    """Run ``job()`` on a thread of its own after each ``wake()``, and every ``period`` s.

    Wakes that arrive while ``job`` runs are folded into one more run, so ``job`` must take
    everything that is pending (it is never called concurrently with itself). ``job`` may
    return the seconds after which it wants to run again without a wake (e.g. when a held
    item falls due); None means ``period``. An exception from ``job`` goes to ``on_error`` and
    the thread carries on.
    """

    def __init__(self, job: Callable[[], Optional[float]], name: str,
                 period: Optional[float] = None,
                 on_error: Optional[Callable[[BaseException], None]] = None) -> None:
        """Prepare the thread (``start`` starts it); ``period`` None = only when woken."""
        if period is not None and period <= 0:
            raise ValueError(f'period must be positive or None, got {period}')
        self._job = job
        self._period = period
        self._on_error = on_error
        self._cond = threading.Condition()
        self._woken = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """Ask for one more run of ``job`` (cheap; safe from any thread)."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the current run; return whether the thread ended within ``timeout``."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread.is_alive()

    def _run(self) -> None:
        timeout = self._period
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._woken or self._stopping, timeout)
                if self._stopping:
                    return
                self._woken = False
            timeout = self._period
            try:
                again = self._job()
            except Exception as e:  # noqa: B902 - a worker must outlive a failed job
                if self._on_error is None:
                    raise
                self._on_error(e)
                continue
            if again is not None:
                timeout = max(0.0, float(again))
