"""A tiny launcher: run a command, then write its wall seconds, CPU seconds and peak RSS.

    python -S bench/launch.py OUT.json CMD [ARGS...]

Why not measure from the harness directly: Linux counts the resident set of
the process that forked (the harness, hundreds of MB after synthesising
data) into the peak RSS of its exec'd child, so every figure would be at
least the harness's own size. Forked from this ~8 MB launcher instead, the
command's ``ru_maxrss`` is its own. Standard library only, no site imports.
"""

import json
import os
import sys
import time


def main() -> None:
    out, cmd = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(out, "w") as fh:
        json.dump(
            {
                "seconds": seconds,
                "maxrss_kb": usage.ru_maxrss,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            },
            fh,
        )
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
