"""Where rt_ros finds its data (config/, launch/): a checkout, a pip install or a ROS install."""

import sys
from pathlib import Path

PACKAGE = "rt_ros"
_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The folder holding config/ and launch/: checkout, ament share dir, or pip's share dir."""
    if (_CHECKOUT_ROOT / "config").is_dir() and (_CHECKOUT_ROOT / "package.xml").is_file():
        return _CHECKOUT_ROOT
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        pass
    else:
        try:
            return Path(get_package_share_directory(PACKAGE))
        except PackageNotFoundError:
            pass
    return Path(sys.prefix) / "share" / PACKAGE


def config_dir() -> Path:
    """The config/ folder (node parameter files and action-space profiles)."""
    return share_dir() / "config"


def action_spaces_dir() -> Path:
    """The folder of action-space YAML profiles."""
    return config_dir() / "action_spaces"
