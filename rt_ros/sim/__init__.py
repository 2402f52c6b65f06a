"""Embedded MuJoCo world: robot, scenes, tasks, scripted expert, camera.

MuJoCo picks its OpenGL backend when first imported. Without a display, offscreen rendering goes
through OSMesa (Debian: libosmesa6) unless MUJOCO_GL already names one (egl on a GPU machine).
"""

import os

if "DISPLAY" not in os.environ:
    os.environ.setdefault("MUJOCO_GL", "osmesa")
