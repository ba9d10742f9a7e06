"""Child process that runs xprof's native XSpace conversion (run by file path, never imported
by the server): `python convert_child.py TOOL XPLANE_PATH OUT_PATH`.

It imports nothing of ReLU Lab, so it starts fast; the parent (profiling.traces.xplane) bounds
its time and memory and turns any crash into a one-line error.
Exit codes: 0 ok, 3 xprof refused the file (message on stdout).
"""

import os
import sys


def _test_fault() -> None:
    """Test hook: _RELU_LAB_INTERNAL_CONVERT_FAULT=segfault|hang makes this child crash for real."""
    fault = os.environ.get("_RELU_LAB_INTERNAL_CONVERT_FAULT")
    if fault == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif fault == "hang":
        import time

        time.sleep(3600)


def main() -> int:
    tool, path, out = sys.argv[1:4]
    _test_fault()
    from xprof.convert import raw_to_tool_data

    try:
        data, _ = raw_to_tool_data.xspace_to_tool_data([path], tool, {"use_saved_result": False})
    except Exception as e:  # noqa: BLE001 - xprof raises RuntimeError with a status string
        print(f"xprof cannot convert the XSpace: {str(e).strip().splitlines()[0] if str(e) else e}")
        return 3
    if not data:
        print("not a readable XSpace (.xplane.pb): truncated or not a TF profile")
        return 3
    with open(out, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
