"""The policy server: an ASGI app running model bundles for robots over HTTP (no rclpy here)."""
