"""View the robot: robot_state_publisher (the package's xacro), joint_state_publisher and RViz with
rviz/rt_ros.rviz (robot model, TF, head camera image, the driver's commanded end-effector twist).

On its own it shows the robot with sliders for the joints (use_gui:=true); next to a running
robot, Gazebo or the MuJoCo demo, set joint_state_publisher:=false and the robot's /joint_states
drive the model.

    ros2 launch rt_ros view.launch.py
    ros2 launch rt_ros view.launch.py joint_state_publisher:=false use_sim_time:=true
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rt_ros.launch_helpers import BOOLEANS, PACKAGE


def view_nodes(context: LaunchContext) -> list[Node]:
    import xacro

    share = Path(get_package_share_directory(PACKAGE))
    urdf = xacro.process_file(str(share / "urdf" / "rt_mobile_manipulator.urdf.xacro")).toxml()
    use_sim_time = LaunchConfiguration("use_sim_time").perform(context) == "true"
    rviz_config = LaunchConfiguration("rviz_config").perform(context) or str(
        share / "rviz" / "rt_ros.rviz"
    )
    nodes = [
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": urdf, "use_sim_time": use_sim_time}],
            output="screen",
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", rviz_config],
            parameters=[{"use_sim_time": use_sim_time}],
            output="screen",
        ),
    ]
    if LaunchConfiguration("joint_state_publisher").perform(context) == "true":
        gui = LaunchConfiguration("use_gui").perform(context) == "true"
        nodes.append(
            Node(
                package="joint_state_publisher_gui" if gui else "joint_state_publisher",
                executable="joint_state_publisher_gui" if gui else "joint_state_publisher",
                parameters=[{"use_sim_time": use_sim_time}],
                output="screen",
            )
        )
    return nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "joint_state_publisher",
                default_value="true",
                choices=BOOLEANS,
                description="Publish joint states here (zero or slider positions). false: "
                "another process (a robot, Gazebo, the MuJoCo demo) publishes /joint_states.",
            ),
            DeclareLaunchArgument(
                "use_gui",
                default_value="false",
                choices=BOOLEANS,
                description="Sliders for the joints (joint_state_publisher_gui).",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                choices=BOOLEANS,
                description="Use /clock (Gazebo) instead of the system clock.",
            ),
            DeclareLaunchArgument(
                "rviz_config",
                default_value="",
                description="RViz configuration file. Empty: the package's rviz/rt_ros.rviz.",
            ),
            OpaqueFunction(function=view_nodes),
        ]
    )
