"""A stand-in camera for `rt-ros bench-node`: rgb8 frames on camera/image_raw at a fixed rate.

It runs as its own process, as a camera driver does, so that the DDS settings it publishes with
(the Fast DDS profile in its environment) are the ones measured: a frame is carried by the
publisher's transport, and that side decides whether it arrives. It waits for a subscriber,
publishes for `--duration-s`, then prints how many frames it published.

    python -m rt_ros.nodes.bench_camera --rate-hz 30 --width 640 --height 480 --duration-s 60
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import rclpy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from rt_ros.nodes.image_conversion import rgb_to_image_msg
from rt_ros.nodes.qos import SENSOR_QOS

TOPIC = "camera/image_raw"
# Frames cycled through (random pixels, so no transport can shortcut them).
FRAME_COUNT = 4
STARTED_LINE = "camera publishing"
PUBLISHED_LINE = "camera published"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-hz", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--wait-s", type=float, default=120.0, help="for a subscriber")
    args = parser.parse_args(argv)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("rt_ros_bench_camera")
    publisher = node.create_publisher(Image, TOPIC, SENSOR_QOS)
    generator = np.random.default_rng(0)
    frames = [
        generator.integers(0, 256, (args.height, args.width, 3), np.uint8)
        for _ in range(FRAME_COUNT)
    ]
    try:
        deadline = time.monotonic() + args.wait_s
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                print(f"no subscriber on {TOPIC} within {args.wait_s:g} s", file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(STARTED_LINE, flush=True)
        period_s = 1.0 / args.rate_hz
        published = 0
        start = next_frame = time.monotonic()
        while next_frame < start + args.duration_s:
            time.sleep(max(0.0, next_frame - time.monotonic()))
            frame = frames[published % FRAME_COUNT]
            publisher.publish(rgb_to_image_msg(frame, node.get_clock().now().to_msg(), "camera"))
            published += 1
            next_frame += period_s
        print(f"{PUBLISHED_LINE} {published} frames", flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
