"""rt_ros: Robotics Transformer policies on a real-time ROS 2 control loop."""

__version__ = "0.1.0"
