"""rt_ros on a real robot: the policy node and the driver node on the `ros_topics` backend.

The driver sends safe commands to MoveIt Servo (servo_node/delta_twist_cmds), the base
controller (cmd_vel) and the gripper controller; config/driver.yaml names the topics and limits.

    ros2 launch rt_ros robot.launch.py model_path:=/path/to/bundle
    ros2 launch rt_ros robot.launch.py --show-args
"""

from launch.actions import OpaqueFunction
from launch.launch_description import LaunchDescription

from rt_ros.launch_helpers import declare_arguments, rt_ros_nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *declare_arguments(),
            OpaqueFunction(function=rt_ros_nodes, kwargs={"backend": "ros_topics"}),
        ]
    )
