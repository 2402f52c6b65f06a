"""The errors rt_ros raises on bad input, so callers can catch them at the edge and carry on."""


class RtRosError(Exception):
    """Base class of every error rt_ros raises on purpose."""


class ConfigError(RtRosError, ValueError):
    """A configuration value (profile, preset, parameter) is missing or out of range."""


class BundleError(RtRosError):
    """A model bundle is missing, truncated, corrupt, or disagrees with its manifest."""


class FrameError(RtRosError, ValueError):
    """A camera frame has the wrong shape, dtype or channel count for the model."""


class InstructionError(RtRosError, ValueError):
    """An instruction cannot be embedded (empty, or unknown to a precomputed table)."""


class ActionDecodeError(RtRosError, ValueError):
    """Model output or action text cannot be decoded (non-finite logits, malformed RT-2 text)."""


class TokenWindowError(RtRosError, ValueError):
    """A window of frame tokens sent to a policy server has the wrong shape, type or values."""


class RemotePolicyError(RtRosError):
    """A remote policy gave no usable answer in time (unreachable, too slow, refused, garbled)."""
