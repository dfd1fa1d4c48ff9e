"""Whether a process runs, by pid: the one check the decoding pool, the job table and the connection table share."""

from __future__ import annotations

import os


def process_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (signal 0 checks without sending anything; a process
    of another user exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
