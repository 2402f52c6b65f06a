"""Named QoS profiles shared by the rt_ros nodes, so both ends of every topic agree."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Motion commands and e-stop: every message matters, none is worth keeping for a late joiner.
COMMAND_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    durability=DurabilityPolicy.VOLATILE,
)

# Camera frames, joint states, poses: newest wins, best effort (matches any publisher).
SENSOR_QOS = qos_profile_sensor_data

# The current instruction is latched: a node that starts later still receives it.
INSTRUCTION_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

# Status and diagnostics: reliable and volatile, as diagnostic_updater publishes /diagnostics.
STATUS_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    durability=DurabilityPolicy.VOLATILE,
)

__all__ = ["COMMAND_QOS", "INSTRUCTION_QOS", "SENSOR_QOS", "STATUS_QOS"]
