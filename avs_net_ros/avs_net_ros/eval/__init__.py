"""Rosbag evaluation: bag reading/writing, stamp pairing, offline and replay scoring, reports.

Torch-free and rclpy-free (rosbags reads and writes the bags); publishing a bag into a running
ROS graph lives in ``ros/player.py``.
"""
