"""rt_ros in simulation: the policy node and the driver node on the embedded MuJoCo `sim` backend.

Same arguments as robot.launch.py, plus sim_params_file: a YAML file with a driver_node:
ros__parameters: section for the sim backend, applied after driver_params_file.

    ros2 launch rt_ros sim.launch.py model_path:=/path/to/bundle
    ros2 launch rt_ros sim.launch.py --show-args
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_description import LaunchDescription

from rt_ros.launch_helpers import declare_arguments, rt_ros_nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *declare_arguments(),
            DeclareLaunchArgument(
                "sim_params_file",
                default_value="",
                description="Driver parameters for the sim backend (YAML with a driver_node: "
                "ros__parameters: section), applied after driver_params_file. Empty: none.",
            ),
            OpaqueFunction(
                function=rt_ros_nodes,
                kwargs={
                    "backend": "sim",
                    "driver_params_arguments": ("driver_params_file", "sim_params_file"),
                },
            ),
        ]
    )
