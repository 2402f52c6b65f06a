"""Expert demonstrations recorded as MCAP: read back with the mcap reader and decoded as ROS 2
messages (by mcap-ros2-support, and by rclpy's own deserializer where rclpy is installed)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mujoco", reason="collecting needs the sim extra (mujoco)")
pytest.importorskip("mcap_ros2", reason="collecting needs the sim extra (mcap-ros2-support)")

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from rt_ros.runtime.action_space import load_action_space
from rt_ros.train.collect import collect_demonstrations, missing_seeds
from rt_ros.train.mcap_bag import message_definition

TOPICS = {
    "/instruction": "std_msgs/msg/String",
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/cmd/arm": "geometry_msgs/msg/TwistStamped",
    "/cmd/base": "geometry_msgs/msg/TwistStamped",
    "/cmd/gripper": "std_msgs/msg/Float64",
    "/cmd/mode": "std_msgs/msg/String",
    "/action/tokens": "std_msgs/msg/Int32MultiArray",
    "/episode/success": "std_msgs/msg/Bool",
    "/episode/info": "std_msgs/msg/String",
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos")
    episodes = collect_demonstrations("pick", episodes=1, out_dir=out, seed_start=4)
    return episodes[0]


def read_all(path):
    with open(path, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        messages = [
            (channel.topic, schema.name, message, decoded)
            for schema, channel, message, decoded in reader.iter_decoded_messages(
                log_time_order=True
            )
        ]
    return summary, messages


def test_episode_is_successful_and_written(recorded):
    assert recorded.result.success
    assert recorded.path.name == "pick_seed4.mcap"
    assert recorded.path.stat().st_size > 0


def test_reads_back_as_ros2_messages(recorded):
    summary, messages = read_all(recorded.path)
    assert summary.statistics.message_count == recorded.messages
    seen = {topic: schema for topic, schema, _, _ in messages}
    assert seen == TOPICS
    for schema in summary.schemas.values():
        assert schema.encoding == "ros2msg"
    steps = recorded.result.steps
    by_topic = {}
    for topic, _, message, decoded in messages:
        by_topic.setdefault(topic, []).append((message, decoded))
    assert len(by_topic["/camera/image_raw"]) == steps
    assert len(by_topic["/action/tokens"]) == steps
    image = by_topic["/camera/image_raw"][0][1]
    assert (image.encoding, image.width, image.height) == ("rgb8", 320, 256)
    assert len(image.data) == image.step * image.height
    space = load_action_space("rt1_everyday_robots")
    tokens = by_topic["/action/tokens"][-1][1]
    assert tokens.layout.dim[0].label == space.name
    assert len(tokens.data) == len(space.dimensions)
    assert by_topic["/cmd/mode"][-1][1].data == "terminate"
    assert by_topic["/episode/success"][0][1].data is True
    info = json.loads(by_topic["/episode/info"][0][1].data)
    assert info["instruction"] == by_topic["/instruction"][0][1].data
    assert info["steps"] == steps
    assert info["expert_approach_gain"] == 1.0
    stamps = [m.log_time for m, _ in by_topic["/camera/image_raw"]]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_rclpy_deserializes_the_recorded_bytes(recorded):
    serialization = pytest.importorskip("rclpy.serialization", reason="needs rclpy")
    from sensor_msgs.msg import Image, JointState

    _, messages = read_all(recorded.path)
    for topic, message_type in (("/camera/image_raw", Image), ("/joint_states", JointState)):
        raw = next(m for t, _, m, _ in messages if t == topic)
        msg = serialization.deserialize_message(raw.data, message_type)
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == raw.log_time
    joints = serialization.deserialize_message(
        next(m for t, _, m, _ in messages if t == "/joint_states").data, JointState
    )
    assert len(joints.name) == len(joints.position) >= 12


def test_message_definitions_carry_their_dependencies():
    text = message_definition("geometry_msgs/msg/TwistStamped")
    for dependency in ("std_msgs/Header", "builtin_interfaces/Time", "geometry_msgs/Twist"):
        assert f"MSG: {dependency}" in text


def test_parallel_jobs_record_the_same_episodes_as_one(tmp_path):
    """Seeds, not workers, decide an episode: two jobs give the tokens one job gives."""
    one = collect_demonstrations("knock_over", 2, tmp_path / "one", seed_start=10)
    two = collect_demonstrations("knock_over", 2, tmp_path / "two", seed_start=10, jobs=2)
    assert [e.path.name for e in one] == [e.path.name for e in two]
    for first, second in zip(one, two, strict=True):
        tokens = [
            [
                list(read.data)
                for t, _, _, read in read_all(episode.path)[1]
                if t == "/action/tokens"
            ]
            for episode in (first, second)
        ]
        assert tokens[0] == tokens[1]
    assert not list(tmp_path.rglob("*.partial"))


def test_dagger_episode_is_driven_by_the_policy_and_labelled_by_the_expert(tmp_path, tiny_bundle):
    """A random rt1-tiny drives (expert_mix 0); the recorded tokens are the expert's labels of
    the states the policy led to, and the commands are what the policy did."""
    from rt_ros.runtime.action_codec import ActionTokenCodec
    from rt_ros.runtime.action_motion import action_to_motion
    from rt_ros.sim.expert import RT1_CONTROL_PERIOD_S

    (episode,) = collect_demonstrations(
        "pick", 1, tmp_path, seed_start=3, policy_path=tiny_bundle, expert_mix=0.0
    )
    assert episode.source == "dagger"
    _, messages = read_all(episode.path)
    by_topic = {}
    for topic, _, _, decoded in messages:
        by_topic.setdefault(topic, []).append(decoded)
    info = json.loads(by_topic["/episode/info"][0].data)
    assert info["source"] == "dagger"
    assert info["labels"] == "rt_ros scripted expert"
    assert str(tiny_bundle.resolve()) in info["driver"]
    space = load_action_space("rt1_everyday_robots")
    codec = ActionTokenCodec(space)
    labels = [codec.decode_tokens(list(m.data)) for m in by_topic["/action/tokens"]]
    commanded = [m.twist.linear.x for m in by_topic["/cmd/arm"]]
    labelled = [action_to_motion(a, space, RT1_CONTROL_PERIOD_S).arm_twist[0] for a in labels]
    assert len(labels) == len(commanded) == len(by_topic["/camera/image_raw"]) > 0
    # The untrained policy does not do what the expert says.
    assert commanded != pytest.approx(labelled)


def test_a_dagger_episode_the_expert_gives_up_at_once_writes_nothing(tmp_path, tiny_bundle):
    """move_near seed 50082: the expert's plan gives up on the very first state, so no state
    gets a label. No bag is written (training refuses a bag without frames), no partial file
    is left, and a resumed collection tries the seed again."""
    (episode,) = collect_demonstrations(
        "move_near", 1, tmp_path, seed_start=50082, policy_path=tiny_bundle, expert_mix=0.0
    )
    assert episode.path is None
    assert episode.episodes == 0
    assert episode.result.steps == 1
    assert not list(tmp_path.iterdir())
    assert missing_seeds(tmp_path, "move_near", 50082, 1) == [50082]


def test_an_interrupted_collection_resumes_where_it_stopped(tmp_path):
    """With skip_existing, finished episodes are kept as they are and only missing seeds (here
    one never started and one left as .mcap.partial by an interruption) are recorded."""
    (kept,) = collect_demonstrations("knock_over", 1, tmp_path, seed_start=20)
    before = kept.path.stat().st_mtime_ns
    (tmp_path / "knock_over_seed21.mcap.partial").write_bytes(b"cut off")
    assert missing_seeds(tmp_path, "knock_over", 20, 3) == [21, 22]
    resumed = collect_demonstrations("knock_over", 3, tmp_path, seed_start=20, skip_existing=True)
    assert [e.result.seed for e in resumed] == [21, 22]
    assert kept.path.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.glob("*.mcap")) == [
        f"knock_over_seed{seed}.mcap" for seed in (20, 21, 22)
    ]
    assert not list(tmp_path.glob("*.partial"))
    again = collect_demonstrations("knock_over", 3, tmp_path, seed_start=20, skip_existing=True)
    assert again == []


def test_the_expert_approach_gain_is_applied_and_recorded(tmp_path, recorded):
    """The same layout with a geometric approach: a longer episode, and the gain in its info."""
    (geometric,) = collect_demonstrations("pick", 1, tmp_path, 4, expert_approach_gain=0.5)
    assert geometric.result.success
    assert geometric.result.steps > recorded.result.steps
    _, messages = read_all(geometric.path)
    (info,) = [
        json.loads(decoded.data) for topic, _, _, decoded in messages if topic == "/episode/info"
    ]
    assert info["expert_approach_gain"] == 0.5
    with pytest.raises(ValueError, match="approach_gain"):
        collect_demonstrations("pick", 1, tmp_path, expert_approach_gain=0.0)


def test_dagger_needs_a_bundle_folder(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        collect_demonstrations("pick", 1, tmp_path, policy_path=tmp_path / "missing")
    with pytest.raises(ValueError, match=r"expert_mix \(1.5\) must be in \[0, 1\]"):
        collect_demonstrations("pick", 1, tmp_path, expert_mix=1.5)
