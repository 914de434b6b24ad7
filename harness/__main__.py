import signal
import sys


def _before_anything_started(signum: int, frame: object) -> None:
    # A signal while the harness is still importing: nothing to stop yet; the exit code says which signal.
    print(f"harness: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
    raise SystemExit(128 + signum)


for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, _before_anything_started)

from harness.cli import console  # noqa: E402 - after the handlers, so a signal during imports is one line too

raise SystemExit(console())
