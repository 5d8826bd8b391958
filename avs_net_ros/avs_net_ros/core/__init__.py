"""Pure core of avs_net_ros: signal processing, scaling, metrics and the model contract.

Nothing here imports rclpy or torch, so the same code runs on the robot, in training and in
offline evaluation.
"""
