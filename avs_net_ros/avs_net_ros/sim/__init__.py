"""Simulated audio-visual world: indoor scenes, ray-cast RGB-D and binaural chirp echoes.

Torch-free and rclpy-free, so the simulated-robot node, the dataset generator and the tests
share one implementation. Entry point: :class:`avs_net_ros.sim.world.SimulatedWorld`.
"""
