"""Embedded MuJoCo world: robot, scenes, tasks, scripted expert, camera."""
