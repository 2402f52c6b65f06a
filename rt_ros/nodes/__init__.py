"""ROS 2 nodes: the policy node, the driver node, message conversions and QoS profiles."""
