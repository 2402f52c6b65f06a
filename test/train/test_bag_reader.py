"""The training data reader: rt-ros collect episodes, a robot's `ros2 bag record` of commanded
velocities (rosbag2 folder, CompressedImage camera), and the recordings it must refuse."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_space import load_action_space
from rt_ros.train.bag_reader import BagError, BagReader, find_recordings
from rt_ros.train.mcap_bag import McapBagWriter
from rt_ros.train.topic_map import TopicMap, load_topic_map

SPACE = load_action_space("rt1_everyday_robots")
CODEC = ActionTokenCodec(SPACE)
PERIOD_S = 1.0 / 3.0
NS = 1_000_000_000


def _read_topic(path: Path, topic: str) -> list:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as file:
        reader = make_reader(file, decoder_factories=[DecoderFactory()])
        return [decoded for *_, decoded in reader.iter_decoded_messages(topics=[topic])]


def test_collect_episode_reads_back_frame_and_tokens_of_every_tick(recorded_episodes):
    path = recorded_episodes / "pick" / "pick_seed1.mcap"
    (episode,) = BagReader(load_topic_map(), SPACE).episodes(path)
    recorded = [list(msg.data) for msg in _read_topic(path, "/action/tokens")]
    images = _read_topic(path, "/camera/image_raw")
    info = json.loads(_read_topic(path, "/episode/info")[0].data)
    assert len(episode) == len(recorded) == len(images) == info["steps"]
    assert episode.tokens.tolist() == recorded
    assert episode.instruction == info["instruction"]
    assert episode.success is True
    assert episode.info["family"] == "pick"
    assert episode.info["source"] == "expert"
    first = np.frombuffer(images[0].data, np.uint8).reshape(images[0].height, images[0].width, 3)
    np.testing.assert_array_equal(episode.frames[0], first)


def test_find_recordings_walks_folders(recorded_episodes, tmp_path):
    found = find_recordings([recorded_episodes])
    assert [p.name for p in found if p.parent.name == "knock_over"] == [
        "knock_over_seed2.mcap",
        "knock_over_seed3.mcap",
    ]
    assert len(found) == 6
    with pytest.raises(BagError, match="no such file or folder"):
        find_recordings([tmp_path / "missing"])


# ------------------------------------------------------------------ a robot's ros2 bag record
ROBOT_MAP = TopicMap(
    name="robot",
    image_topic="/head_camera/image_raw/compressed",
    instruction_topic="/instruction",
    arm_command_topic="/servo_node/delta_twist_cmds",
    gripper_command_topic="/gripper_closedness",
    control_period_s=PERIOD_S,
    command_timeout_s=0.5,
)


def _jpeg(value: int) -> bytes:
    frame = np.full((48, 64, 3), value, np.uint8)
    ok, data = cv2.imencode(".jpg", frame)
    assert ok
    return data.tobytes()


def _write_robot_bag(folder: Path, arm_velocity: tuple[float, ...], seconds: float = 2.0):
    """A rosbag2 folder as `ros2 bag record -s mcap` writes it: a 30 Hz JPEG camera, one
    instruction, servo twists at 50 Hz held constant, the gripper closing after one second."""
    folder.mkdir(parents=True)
    with McapBagWriter(folder / "robot_0.mcap") as bag:
        bag.write("/instruction", "std_msgs/msg/String", {"data": "pick the sponge"}, 1)
        for i in range(int(seconds * 30)):
            t = round(i * NS / 30) + 2
            message = {
                "header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": "camera"},
                "format": "jpeg",
                "data": _jpeg(i % 250),
            }
            bag.write(ROBOT_MAP.image_topic, "sensor_msgs/msg/CompressedImage", message, t)
        for i in range(int(seconds * 50)):
            t = round(i * NS / 50) + 3
            linear = dict(zip("xyz", arm_velocity[:3], strict=True))
            angular = dict(zip("xyz", arm_velocity[3:], strict=True))
            twist = {
                "header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": "base_link"},
                "twist": {"linear": linear, "angular": angular},
            }
            bag.write(ROBOT_MAP.arm_command_topic, "geometry_msgs/msg/TwistStamped", twist, t)
        bag.write(ROBOT_MAP.gripper_command_topic, "std_msgs/msg/Float64", {"data": -1.0}, 4)
        bag.write(ROBOT_MAP.gripper_command_topic, "std_msgs/msg/Float64", {"data": 1.0}, NS)
    metadata = {
        "rosbag2_bagfile_information": {
            "version": 9,
            "storage_identifier": "mcap",
            "relative_file_paths": ["robot_0.mcap"],
        }
    }
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    return folder


def test_robot_bag_commands_become_per_tick_tokens(tmp_path):
    velocity = (0.06, -0.03, 0.0, 0.0, 0.0, 0.3)  # m/s and rad/s, held the whole time
    bag = _write_robot_bag(tmp_path / "robot_bag", velocity)
    assert find_recordings([tmp_path]) == [bag]
    (episode,) = BagReader(ROBOT_MAP, SPACE).episodes(bag)
    # Ticks every control period from the first frame while a whole period of data remains.
    assert len(episode) == 5
    assert episode.frames[0].shape == (48, 64, 3)
    names = SPACE.names
    for tick, tokens in enumerate(episode.tokens):
        values = dict(zip(names, CODEC.tokens_to_values(tokens), strict=True))
        # Displacement over one period, tokenized with RT-1's floor (within one bin, below).
        bin_m = 2.0 / 255
        assert velocity[0] * PERIOD_S - bin_m <= values["world_vector_x"] <= velocity[0] * PERIOD_S
        assert velocity[1] * PERIOD_S - bin_m <= values["world_vector_y"] <= velocity[1] * PERIOD_S
        yaw = velocity[5] * PERIOD_S
        assert yaw - math.pi / 255 <= values["rotation_delta_yaw"] <= yaw
        expected_tokens = CODEC.encode(
            {name: 0.0 for name in names}
            | {
                "world_vector_x": velocity[0] * PERIOD_S,
                "world_vector_y": velocity[1] * PERIOD_S,
                "rotation_delta_yaw": yaw,
                "gripper_closedness_action": values["gripper_closedness_action"],
                "terminate_episode": tokens[SPACE.index_of("terminate_episode")],
            }
        )
        np.testing.assert_array_equal(tokens, expected_tokens)
        mode = SPACE.dimension("terminate_episode").label_for(int(tokens[7]))
        assert mode == ("terminate" if tick == len(episode) - 1 else "arm")
    gripper = [
        CODEC.token_to_value("gripper_closedness_action", int(t)) for t in episode.tokens[:, 3]
    ]
    assert gripper[0] == -1.0
    assert gripper[-1] == 1.0


def test_commands_stop_counting_after_the_timeout(tmp_path):
    bag = _write_robot_bag(tmp_path / "bag", (0.06, 0.0, 0.0, 0.0, 0.0, 0.0), seconds=1.0)
    # The same bag read with a 5 ms command timeout: each 20 ms command moves for 5 ms only.
    short = dataclasses.replace(ROBOT_MAP, command_timeout_s=0.005)
    (held,) = BagReader(ROBOT_MAP, SPACE).episodes(bag)
    (brief,) = BagReader(short, SPACE).episodes(bag)
    x = SPACE.index_of("world_vector_x")
    assert CODEC.token_to_value(x, int(held.tokens[0, x])) == pytest.approx(0.02, abs=0.008)
    assert CODEC.token_to_value(x, int(brief.tokens[0, x])) == pytest.approx(0.005, abs=0.008)


# ------------------------------------------------------------------ refusals
def test_a_recording_without_the_image_topic_is_refused(recorded_episodes):
    no_camera = dataclasses.replace(load_topic_map(), image_topic="/front_camera/image_raw")
    path = recorded_episodes / "pick" / "pick_seed0.mcap"
    with pytest.raises(
        BagError, match=r"pick_seed0.mcap: no image topic '/front_camera/image_raw'"
    ):
        list(BagReader(no_camera, SPACE).episodes(path))


def test_a_recording_without_action_topics_is_refused(recorded_episodes):
    tmap = dataclasses.replace(
        load_topic_map(), action_tokens_topic="/tokens", arm_command_topic="/arm", mode_topic=""
    )
    tmap = dataclasses.replace(tmap, base_command_topic="")
    path = recorded_episodes / "pick" / "pick_seed0.mcap"
    with pytest.raises(BagError, match=r"none of the action topics \['/tokens', '/arm'\]"):
        list(BagReader(tmap, SPACE).episodes(path))


def test_an_episode_without_frames_is_refused(tmp_path):
    path = tmp_path / "empty.mcap"
    with McapBagWriter(path) as bag:
        bag.write("/instruction", "std_msgs/msg/String", {"data": "pick sponge"}, 1)
        image = {
            "header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""},
            "height": 2, "width": 2, "encoding": "rgb8", "is_bigendian": 0, "step": 6,
            "data": bytes(12),
        }  # fmt: skip
        bag.write("/camera/image_raw", "sensor_msgs/msg/Image", image, 0)  # before the episode
        tokens = {"layout": {"dim": [], "data_offset": 0}, "data": [127] * 11}
        bag.write("/action/tokens", "std_msgs/msg/Int32MultiArray", tokens, 5)
    with pytest.raises(BagError, match=r"empty.mcap: the episode 'pick sponge' has no frames"):
        list(BagReader(load_topic_map(), SPACE).episodes(path))


def test_a_recording_in_another_action_space_is_refused(recorded_episodes):
    path = recorded_episodes / "pick" / "pick_seed0.mcap"
    other = load_action_space("rt1x_google_robot")
    with pytest.raises(BagError, match=r"recorded in action space 'rt1_everyday_robots', but"):
        list(BagReader(load_topic_map(), other).episodes(path))


def test_tokens_of_another_profile_or_width_are_refused(tmp_path):
    def bag_with(tokens: list[int], label: str) -> Path:
        path = tmp_path / f"{label}_{len(tokens)}.mcap"
        with McapBagWriter(path) as bag:
            bag.write("/instruction", "std_msgs/msg/String", {"data": "open the drawer"}, 1)
            image = {
                "header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""},
                "height": 2, "width": 2, "encoding": "rgb8", "is_bigendian": 0, "step": 6,
                "data": bytes(12),
            }  # fmt: skip
            bag.write("/camera/image_raw", "sensor_msgs/msg/Image", image, 2)
            layout = {
                "dim": [{"label": label, "size": len(tokens), "stride": 1}],
                "data_offset": 0,
            }
            message = {"layout": layout, "data": tokens}
            bag.write("/action/tokens", "std_msgs/msg/Int32MultiArray", message, 3)
        return path

    reader = BagReader(load_topic_map(), SPACE)
    with pytest.raises(BagError, match=r"in action space 'rt2_text', but training uses"):
        list(reader.episodes(bag_with([1] * 11, "rt2_text")))
    with pytest.raises(BagError, match=r"have 8 values, but rt1_everyday_robots has 11"):
        list(reader.episodes(bag_with([1] * 8, "rt1_everyday_robots")))
    with pytest.raises(BagError, match=r"'terminate_episode': 7 is not one of its values"):
        list(reader.episodes(bag_with([7] * 11, "rt1_everyday_robots")))
    (episode,) = reader.episodes(bag_with([1] * 11, "rt1_everyday_robots"))
    assert episode.tokens.tolist() == [[1] * 11]
