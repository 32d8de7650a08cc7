"""``python -m localkafka [run] [--port N]`` runs a broker until SIGINT/SIGTERM;
``python -m localkafka fetch`` only downloads the jars (to warm the cache)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

from localkafka.broker import BrokerError, KafkaBroker, ensure_jars, kafka_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkafka", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["run", "fetch"], default="run")
    parser.add_argument(
        "--version",
        help="Kafka version (default: $LAG_EXPORTER_KAFKA_VERSION or the built-in default)",
    )
    parser.add_argument("--port", type=int, help="client port (default: a free one)")
    args = parser.parse_args(argv)
    version: str = args.version or kafka_version()

    if args.command == "fetch":
        started = time.monotonic()
        lib = ensure_jars(version, report=lambda line: print(line, flush=True))
        print(f"Kafka {version} jars in {lib} ({time.monotonic() - started:.1f} s)", flush=True)
        return 0

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before the broker starts so a signal during start-up is not lost.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    broker = KafkaBroker(version, port=args.port)
    try:
        started = time.monotonic()
        broker.start()
        print(
            f"Kafka {version} ready in {time.monotonic() - started:.1f} s; log {broker.log_path}",
            file=sys.stderr,
            flush=True,
        )
        print(f"BOOTSTRAP={broker.bootstrap}", flush=True)
        while not stop.wait(1.0):
            if not broker.is_running():
                print(f"Kafka exited unexpectedly; see {broker.log_path}", file=sys.stderr)
                return 1
        return 0
    except BrokerError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        broker.close()


if __name__ == "__main__":
    sys.exit(main())
