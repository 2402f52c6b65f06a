"""rt_ros in simulation: the policy node and the driver node on the embedded MuJoCo `sim` backend.

Same arguments as robot.launch.py, plus sim_params_file: driver parameters for the sim backend
(default: the package's config/sim.yaml: task, seed, camera, holonomic base limits), applied after
driver_params_file.

    ros2 launch rt_ros sim.launch.py model_path:=/path/to/bundle
    ros2 launch rt_ros sim.launch.py --show-args
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from rt_ros.launch_helpers import declare_arguments, rt_ros_nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *declare_arguments(),
            DeclareLaunchArgument(
                "sim_params_file",
                default_value=PathJoinSubstitution(
                    [FindPackageShare("rt_ros"), "config", "sim.yaml"]
                ),
                description="Driver parameters for the sim backend (task, seed, camera, base "
                "limits), applied after driver_params_file. Empty: none.",
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
