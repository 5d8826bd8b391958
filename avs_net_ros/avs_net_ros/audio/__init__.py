"""Sonar audio: one continuous duplex stream, chirp scheduling, echo alignment and cutting.

Plain Python (no rclpy, no torch), so the chirp emitter's logic is unit-testable without ROS:

- ``settings``: what the sonar emits and cuts (``SonarSettings``) and the echo settings it reports.
- ``ring``: the lock-free single-writer sample ring the audio callback records into.
- ``scheduler``: places chirps at known output samples, paced by requests and the echo window.
- ``echo``: direct-path alignment and cutting of one recording (via ``core.acoustics``).
- ``health``: counters and the status the node turns into diagnostics.
- ``engine``: ties a backend, the scheduler and a worker thread together.
- ``duplex``: the sounddevice backend; ``simroom``: a simulated-room backend.
"""
