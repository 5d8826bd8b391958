"""Rosbag evaluation: bag reading/writing, stamp pairing, offline and replay scoring, reports.

Torch-free and rclpy-free (rosbags reads and writes the bags), except ``player``, which
publishes a bag into a running ROS graph.
"""
