"""rt_ros in Gazebo (gz sim Harmonic, ROS 2 Jazzy) through the same interfaces as a real robot.

Starts gz sim with worlds/kitchen.sdf, robot_state_publisher with the robot's xacro expanded with
sim:=gazebo (ros2_control on gz_ros2_control, head camera), spawns the robot from
robot_description, bridges /clock and the head camera with ros_gz_bridge (config/gz_bridge.yaml),
spawns the controllers of config/gz_ros2_control.yaml, and runs the policy node and the driver
node on the `ros_topics` backend (config/driver.yaml then config/gazebo.yaml: joint velocities
computed from the URDF for arm_velocity_controller, base_velocity_controller and
gripper_controller), all on simulation time.

    ros2 launch rt_ros gazebo.launch.py model_path:=/path/to/bundle
    ros2 launch rt_ros gazebo.launch.py --show-args
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rt_ros.launch_helpers import (
    BOOLEANS,
    PACKAGE,
    dds_environment,
    declare_arguments,
    rt_ros_nodes,
)

# Controllers spawned at start-up, in order (the arm position controller is the alternative).
CONTROLLERS = (
    "joint_state_broadcaster",
    "arm_velocity_controller",
    "gripper_controller",
    "base_velocity_controller",
)


def robot_description(share: Path) -> str:
    """The URDF for Gazebo: the package's xacro with sim:=gazebo and the controllers file."""
    import xacro

    document = xacro.process_file(
        str(share / "urdf" / "rt_mobile_manipulator.urdf.xacro"),
        mappings={
            "sim": "gazebo",
            "controllers_file": str(share / "config" / "gz_ros2_control.yaml"),
        },
    )
    return document.toxml()


def gazebo_nodes(context: LaunchContext) -> list:
    """Gazebo, the bridge, robot_state_publisher, the spawn and the controller spawners."""
    share = Path(get_package_share_directory(PACKAGE))
    world = LaunchConfiguration("world").perform(context) or str(share / "worlds" / "kitchen.sdf")
    headless = LaunchConfiguration("headless").perform(context) == "true"
    gz_args = f"-r {'-s ' if headless else ''}{world}"
    ros_gz_sim = Path(get_package_share_directory("ros_gz_sim"))
    sim_time = {"use_sim_time": True}
    return [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(ros_gz_sim / "launch" / "gz_sim.launch.py")),
            launch_arguments={"gz_args": gz_args, "on_exit_shutdown": "true"}.items(),
        ),
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": robot_description(share), **sim_time}],
            output="screen",
        ),
        Node(
            package="ros_gz_sim",
            executable="create",
            arguments=["-topic", "robot_description", "-name", "rt_mobile_manipulator"],
            output="screen",
        ),
        Node(  # the head camera's publisher: its frames travel with the dds_profile
            package="ros_gz_bridge",
            executable="parameter_bridge",
            parameters=[{"config_file": str(share / "config" / "gz_bridge.yaml"), **sim_time}],
            output="screen",
            additional_env=dds_environment(context),
        ),
        *(
            Node(
                package="controller_manager",
                executable="spawner",
                arguments=[name, "--controller-manager", "/controller_manager"],
                parameters=[sim_time],
                output="screen",
            )
            for name in CONTROLLERS
        ),
    ]


def generate_launch_description() -> LaunchDescription:
    config = Path(get_package_share_directory(PACKAGE)) / "config"
    # Gazebo runs on simulation time: the shared use_sim_time argument defaults to true here.
    arguments = [argument for argument in declare_arguments() if argument.name != "use_sim_time"]
    return LaunchDescription(
        [
            *arguments,
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="true",
                choices=BOOLEANS,
                description="Both nodes use /clock (bridged from Gazebo).",
            ),
            DeclareLaunchArgument(
                "gazebo_params_file",
                default_value=str(config / "gazebo.yaml"),
                description="Driver parameters for the Gazebo robot (ros_topics on the "
                "gz_ros2_control controllers), applied after driver_params_file. Empty: none.",
            ),
            DeclareLaunchArgument(
                "world",
                default_value="",
                description="SDF world file. Empty: the package's worlds/kitchen.sdf.",
            ),
            DeclareLaunchArgument(
                "headless",
                default_value="false",
                choices=BOOLEANS,
                description="Run the Gazebo server only, without its GUI.",
            ),
            OpaqueFunction(function=gazebo_nodes),
            OpaqueFunction(
                function=rt_ros_nodes,
                kwargs={
                    "backend": "ros_topics",
                    "driver_params_arguments": ("driver_params_file", "gazebo_params_file"),
                },
            ),
        ]
    )
