"""`ros2 launch FILE NAME:=VALUE ...` where the ros2 command line is not installed (the launch
wheels): the same LaunchService, include and exit code as ros2launch's launch_a_launch_file.

    python test/launch/run_launch_file.py launch/sim.launch.py model_path:=/path/to/bundle
"""

from __future__ import annotations

import sys

from launch.actions import IncludeLaunchDescription
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import AnyLaunchDescriptionSource
from launch.launch_service import LaunchService


def main(argv: list[str]) -> int:
    path, *arguments = argv
    service = LaunchService(argv=arguments)
    include = IncludeLaunchDescription(
        AnyLaunchDescriptionSource(path),
        launch_arguments=[tuple(argument.split(":=", 1)) for argument in arguments],
    )
    service.include_launch_description(LaunchDescription([include]))
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
