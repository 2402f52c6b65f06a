"""SIGINT and SIGTERM as a request to stop, for the nodes' console scripts.

Ctrl-C under `ros2 launch` reaches a node more than once: the terminal's SIGINT to the whole
process group, then launch's own SIGINT (and SIGTERM if the node is slow to exit). With rclpy's
handlers the second one raises KeyboardInterrupt inside whatever cleanup is running, and the node
dies with a traceback and exit code -2. Here every such signal only sets an event; the node's main
loop sees it, cleans up once and returns 0.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_requested_by_signals() -> threading.Event:
    """An event that SIGINT and SIGTERM set from now on; call it before
    rclpy.init(..., signal_handler_options=SignalHandlerOptions.NO)."""
    requested = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda _signum, _frame: requested.set())
    return requested


def ignore_stop_signals() -> None:
    """SIGINT and SIGTERM are ignored from now on; call it once the node has cleaned up.

    While Python finalizes it puts the handlers it installed back to the default, which kills the
    process (exit code -2 for SIGINT) when a late signal arrives; ignored signals it leaves alone.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
