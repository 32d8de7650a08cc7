"""A real single-node Apache Kafka broker (KRaft) assembled from Maven Central jars.

Nothing here is a fake: ``ensure_jars`` has Maven download the broker's and the
command-line tools' runtime classpath once per Kafka version, and
``KafkaBroker`` runs ``kafka.Kafka`` from it as broker and controller in one JVM
on free loopback ports. Standard library only, so it can be imported before
anything else of the project is installed.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "CACHE_ENV",
    "DEFAULT_KAFKA_VERSION",
    "KAFKA_VERSION_ENV",
    "BrokerError",
    "KafkaBroker",
    "consumer_groups_describe_all",
    "ensure_jars",
    "jars_cached",
    "kafka_version",
    "run_tool",
    "start_java_process",
    "tool_class",
]

KAFKA_VERSION_ENV = "LAG_EXPORTER_KAFKA_VERSION"
CACHE_ENV = "LAG_EXPORTER_KAFKA_CACHE"
DEFAULT_KAFKA_VERSION = "4.4.0"

# Named explicitly: Maven 3.8's built-in default of this plugin predates the
# options used here.
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Kafka 3.x logs through slf4j 1.7 to log4j 1; its release tarball ships this
# reload4j, while the POMs alone would resolve an older one (1.2.19).
_RELOAD4J = "ch.qos.reload4j:reload4j:1.2.25"
_MARKER = ".complete"
_READY_LINE = "Kafka Server started"
_STOP_GRACE_S = 15.0

# Tool main classes that moved between Kafka versions (checked against the jars
# of 3.9.1 and 4.x). Keys are short names in the style of the bin/*.sh scripts.
_TOOL_CLASSES: dict[str, tuple[str, str]] = {
    # name: (Kafka 3.x class, Kafka 4.x class)
    "consumer-groups": (
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    ),
    "console-consumer": (
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
    ),
    "console-producer": ("kafka.tools.ConsoleProducer", "org.apache.kafka.tools.ConsoleProducer"),
    "producer-perf-test": (
        "org.apache.kafka.tools.ProducerPerformance",
        "org.apache.kafka.tools.ProducerPerformance",
    ),
    "verifiable-consumer": (
        "org.apache.kafka.tools.VerifiableConsumer",
        "org.apache.kafka.tools.VerifiableConsumer",
    ),
    "storage": ("kafka.tools.StorageTool", "kafka.tools.StorageTool"),
    # kafka-configs.sh (SCRAM credentials among others) and kafka-acls.sh
    "configs": ("kafka.admin.ConfigCommand", "org.apache.kafka.tools.ConfigCommand"),
    "acls": ("kafka.admin.AclCommand", "org.apache.kafka.tools.AclCommand"),
}


class BrokerError(RuntimeError):
    """The broker, a Kafka tool or Maven failed; the message carries the evidence."""


def kafka_version() -> str:
    """The Kafka version to use: ``$LAG_EXPORTER_KAFKA_VERSION`` or the default."""
    return os.environ.get(KAFKA_VERSION_ENV, "").strip() or DEFAULT_KAFKA_VERSION


def _major(version: str) -> int:
    match = re.match(r"(\d+)\.", version)
    if match is None:
        raise ValueError(f"not a Kafka version: {version!r}")
    return int(match.group(1))


def tool_class(name: str, version: str | None = None) -> str:
    """Main class of a Kafka command-line tool, e.g. ``tool_class("console-consumer")``."""
    classes = _TOOL_CLASSES[name]
    return classes[0] if _major(version or kafka_version()) < 4 else classes[1]


# --------------------------------------------------------------------------- jars


def _cache_root() -> Path:
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "lag-exporter"


def _version_dir(version: str) -> Path:
    if not re.fullmatch(r"[0-9A-Za-z.\-]+", version):
        raise ValueError(f"not a Kafka version: {version!r}")
    return _cache_root() / f"kafka-{version}"


def _pom(version: str) -> str:
    logging_deps = ""
    if _major(version) < 4:
        group, artifact, dep_version = _RELOAD4J.split(":")
        logging_deps = _dependency(group, artifact, dep_version)
    # kafka-tools declares connect-runtime (Jetty, Jersey, ...) only for the
    # Connect-related tools; the consumer-group, console and perf tools do not
    # need it, and it doubles the download.
    tools_exclusions = """
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.lag-exporter</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{_dependency("org.apache.kafka", "kafka_2.13", version)}
{_dependency("org.apache.kafka", "kafka-tools", version, tools_exclusions)}
{logging_deps}
  </dependencies>
</project>
"""


def _dependency(group: str, artifact: str, version: str, extra: str = "") -> str:
    return (
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version>{extra}</dependency>"
    )


def _mvn(args: Sequence[str], cwd: Path) -> None:
    """Run Maven quietly; retry once, since a download can fail transiently."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven ('mvn') is not on PATH; it is needed to download Kafka's jars")
    command = [mvn, "-B", "-q", "-Dstyle.color=never", *args]
    output = ""
    for attempt in (1, 2):
        proc = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=900, check=False
        )
        if proc.returncode == 0:
            return
        output = (proc.stdout + proc.stderr)[-4000:]
        if attempt == 1:
            time.sleep(2)
    raise BrokerError(f"Maven failed twice: {' '.join(command)}\n{output}")


def _jar_version(lib: Path, artifact: str) -> str | None:
    for jar in lib.glob(f"{artifact}-*.jar"):
        match = re.fullmatch(re.escape(artifact) + r"-(\d[^-]*(?:-[^-]+)?)\.jar", jar.name)
        if match:
            return match.group(1)
    return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Parallel test workers may all want the same version at once.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def jars_cached(version: str | None = None) -> bool:
    """Whether Kafka ``version``'s jars are already downloaded (no Maven run needed)."""
    vdir = _version_dir(version or kafka_version())
    return (vdir / _MARKER).is_file() and (vdir / "lib").is_dir()


def ensure_jars(version: str | None = None, report: Callable[[str], None] | None = None) -> Path:
    """Download Kafka ``version``'s runtime classpath once; return its ``lib`` dir.

    The jars land in ``$LAG_EXPORTER_KAFKA_CACHE/kafka-<version>/lib`` (default
    cache ``~/.cache/lag-exporter``). A marker written after a complete download
    makes later calls return at once without running Maven. ``report`` is told,
    only when jars are actually fetched, that a download starts and how large
    it was.
    """
    version = version or kafka_version()
    vdir = _version_dir(version)
    lib = vdir / "lib"
    if jars_cached(version):
        return lib
    with _file_lock(vdir.parent / f".kafka-{version}.lock"):
        if jars_cached(version):
            return lib  # another process finished it while we waited
        started = time.monotonic()
        if report is not None:
            report(
                f"first use of Kafka {version}: fetching its jars from Maven Central "
                f"into {vdir} (once)"
            )
        vdir.mkdir(parents=True, exist_ok=True)
        staging = vdir / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(lib, ignore_errors=True)
        (vdir / "pom.xml").write_text(_pom(version), encoding="utf-8")
        _mvn(
            [
                f"{_DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            cwd=vdir,
        )
        _add_slf4j_binding(staging, vdir)
        staging.rename(lib)
        jars = sorted(lib.glob("*.jar"))
        (vdir / _MARKER).write_text("\n".join(p.name for p in jars) + "\n", encoding="utf-8")
        if report is not None:
            size = sum(p.stat().st_size for p in jars)
            report(
                f"Kafka {version}: {len(jars)} jars, {size / 1e6:.0f} MB, fetched in "
                f"{time.monotonic() - started:.0f} s"
            )
    return lib


def _add_slf4j_binding(staging: Path, vdir: Path) -> None:
    """Add the slf4j -> log4j2 binding, which no Kafka 4.x POM declares.

    Kafka 4.x logs through slf4j-api but only its release tarball carries the
    binding; without it the broker writes no log at all. The binding must match
    the log4j-core that kafka-server declares and the slf4j-api major version,
    so both are read from the jars Maven just resolved.
    """
    if list(staging.glob("slf4j-reload4j-*.jar")) or list(staging.glob("log4j-slf4j*-impl-*.jar")):
        return
    log4j_version = _jar_version(staging, "log4j-core")
    slf4j_version = _jar_version(staging, "slf4j-api")
    if log4j_version is None or slf4j_version is None:
        raise BrokerError(f"no logging backend among the resolved jars in {staging}")
    binding = "log4j-slf4j2-impl" if slf4j_version.startswith("2.") else "log4j-slf4j-impl"
    _mvn(
        [
            f"{_DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact=org.apache.logging.log4j:{binding}:{log4j_version}",
            f"-DoutputDirectory={staging}",
        ],
        cwd=vdir,
    )


# ------------------------------------------------------------------ log configs


def _uses_log4j2(lib: Path) -> bool:
    return any(lib.glob("log4j-core-*.jar"))


def _log_config(lib: Path, log_file: Path | None, level: str) -> tuple[str, str]:
    """Return (JVM option prefix, config text) for logging to ``log_file`` or stderr.

    Kafka 4.x logs through log4j2 (properties syntax needs no extra jar), 3.x
    through log4j 1 (reload4j). Which one is told by the jars, not the version.
    """
    pattern = "[%d] %p %m (%c)%n"
    if _uses_log4j2(lib):
        if log_file is None:
            appender = ["appender.out.type = Console", "appender.out.target = SYSTEM_ERR"]
        else:
            appender = ["appender.out.type = File", f"appender.out.fileName = {log_file}"]
        lines = [
            "status = warn",
            # The JVM's own shutdown is the only one; log4j2's hook would only
            # print "Unable to register Log4j shutdown hook" to stdout then.
            "shutdownHook = disable",
            *appender,
            "appender.out.name = OUT",
            "appender.out.layout.type = PatternLayout",
            f"appender.out.layout.pattern = {pattern}",
            f"rootLogger.level = {level}",
            "rootLogger.appenderRef.out.ref = OUT",
            # Per-request logging is noise even at INFO.
            "logger.request.name = kafka.request.logger",
            "logger.request.level = WARN",
        ]
        return "-Dlog4j2.configurationFile=", "\n".join(lines) + "\n"
    if log_file is None:
        appender = [
            "log4j.appender.out=org.apache.log4j.ConsoleAppender",
            "log4j.appender.out.Target=System.err",
        ]
    else:
        appender = [
            "log4j.appender.out=org.apache.log4j.FileAppender",
            f"log4j.appender.out.File={log_file}",
        ]
    lines = [
        f"log4j.rootLogger={level}, out",
        *appender,
        "log4j.appender.out.layout=org.apache.log4j.PatternLayout",
        f"log4j.appender.out.layout.ConversionPattern={pattern}",
        "log4j.logger.kafka.request.logger=WARN",
    ]
    return "-Dlog4j.configuration=file:", "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _tools_log_option(lib: Path) -> str:
    """JVM option pointing the tools at a WARN-to-stderr log config (kept in the cache)."""
    option, text = _log_config(lib, None, "WARN")
    path = lib.parent / "tools-log.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        _write_atomic(path, text)
    return option + str(path)


# --------------------------------------------------------------------- processes

# Short-lived tools: a small heap and the C1 compiler only start noticeably faster.
_TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

_children_lock = threading.Lock()
_children: list[subprocess.Popen[str]] = []


def _load_prctl() -> Callable[[int, int], int] | None:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[[int, int], int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up in the parent: the child between fork and exec should not import.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILLed if the Python process dies.

    atexit does not run when the test session itself is SIGKILLed (CI time-out,
    OOM killer); this makes sure no JVM outlives it even then. Linux only.
    Caveat: it fires when the *thread* that started the child exits.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _preexec() -> Callable[[], None] | None:
    return _die_with_parent if _PRCTL is not None else None


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError("no 'java' on PATH (Kafka needs Java 17+)")
    return java


def _java_command(
    lib: Path, main_class: str, args: Sequence[str], jvm_options: Sequence[str]
) -> list[str]:
    # '<lib>/*' is expanded by the JVM itself, not by a shell.
    return [_java(), *jvm_options, "-cp", str(lib / "*"), main_class, *args]


def _popen(
    command: list[str],
    stdout: IO[str] | int,
    stderr: IO[str] | int,
    stdin: IO[str] | int = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        command,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=True,
        preexec_fn=_preexec(),
    )
    with _children_lock:
        _children.append(proc)
    return proc


def run_tool(
    main_class: str,
    args: list[str],
    timeout: float,
    *,
    version: str | None = None,
    input: str | None = None,
    jvm_options: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run a Kafka Java tool to completion on the broker's classpath.

    Tool logging goes to stderr at WARN, so stdout holds only the tool's output.
    ``input`` is fed to stdin (e.g. lines for the console producer). Raises
    ``subprocess.TimeoutExpired`` (after killing the JVM) on time-out.
    """
    lib = ensure_jars(version)
    command = _java_command(
        lib, main_class, args, [*_TOOL_JVM_OPTIONS, _tools_log_option(lib), *jvm_options]
    )
    return subprocess.run(
        command,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=_preexec(),
    )


def start_java_process(
    main_class: str,
    args: Sequence[str],
    *,
    version: str | None = None,
    stdin: IO[str] | int = subprocess.DEVNULL,
    stdout: IO[str] | int = subprocess.PIPE,
    stderr: IO[str] | int = subprocess.PIPE,
    jvm_options: Sequence[str] = (),
) -> subprocess.Popen[str]:
    """Start a long-running Kafka Java tool (e.g. the console consumer).

    Text mode; pass ``stdin=subprocess.PIPE`` to feed e.g. the console producer.
    With the default pipes, read them (or ``communicate()``) so a chatty tool
    cannot block on a full pipe. The caller stops it (terminate/kill); it is
    also stopped at interpreter exit and, on Linux, killed if this Python
    process dies.
    """
    lib = ensure_jars(version)
    command = _java_command(
        lib, main_class, args, [*_TOOL_JVM_OPTIONS, _tools_log_option(lib), *jvm_options]
    )
    return _popen(command, stdout, stderr, stdin)


def consumer_groups_describe_all(
    bootstrap: str, *, version: str | None = None, timeout: float = 60.0
) -> str:
    """stdout of ``kafka-consumer-groups.sh --describe --all-groups``."""
    version = version or kafka_version()
    proc = run_tool(
        tool_class("consumer-groups", version),
        ["--bootstrap-server", bootstrap, "--describe", "--all-groups"],
        timeout,
        version=version,
    )
    if proc.returncode != 0:
        raise BrokerError(f"ConsumerGroupCommand exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _stop_process(proc: subprocess.Popen[str], grace: float = _STOP_GRACE_S) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def _kill_children_at_exit() -> None:
    with _children_lock:
        children = list(_children)
    for proc in children:
        _stop_process(proc, grace=5.0)


atexit.register(_kill_children_at_exit)


# ------------------------------------------------------------------------ broker


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _cluster_id() -> str:
    # Kafka's own format: 16 random bytes, URL-safe base64 without padding. Ids
    # starting with '-' would be parsed as an option by StorageTool.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:])


def _error_lines(path: Path, offset: int, limit: int = 10) -> str:
    """The first ERROR/FATAL log lines after ``offset``, each with its next line."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return f"(no {path.name})"
    found: list[str] = []
    for i, line in enumerate(lines):
        if re.match(r"\[[^\]]*\] (ERROR|FATAL) ", line):
            found.extend(text[:1000] for text in lines[i : i + 2])
            if len(found) >= 2 * limit:
                break
    return "\n".join(found) or "(none)"


class KafkaBroker:
    """A single-node KRaft Kafka broker (broker + controller in one JVM).

    ``with KafkaBroker() as broker: ... broker.bootstrap`` starts it on free
    loopback ports and removes it, data and all, on exit. ``stop()``/``kill()``
    followed by ``start()``/``restart()`` bring it back on the same ports and
    data dir, for fault tests.

    ``extra_properties`` are merged over the defaults in server.properties. Their
    values may use ``{host}``, ``{port}``, ``{controller_port}`` and one
    ``{name}`` for each entry of ``extra_ports`` (each gets its own free port,
    also in ``broker.ports``), e.g. to add a SASL listener; write literal
    braces as ``{{`` and ``}}``.
    """

    def __init__(
        self,
        version: str | None = None,
        *,
        port: int | None = None,
        extra_properties: Mapping[str, str] | None = None,
        extra_ports: Sequence[str] = (),
        workdir: Path | None = None,
        heap: str = "512m",
        jvm_options: Sequence[str] = (),
        startup_timeout: float = 90.0,
    ) -> None:
        self.version: str = version or kafka_version()
        self.host = "127.0.0.1"
        self._requested_port = port
        self._extra_properties = dict(extra_properties or {})
        self._extra_port_names = list(extra_ports)
        self._own_workdir = workdir is None
        self.workdir: Path = workdir or Path(tempfile.mkdtemp(prefix="localkafka-"))
        self.log_path: Path = self.workdir / "server.log"
        self.stdout_path: Path = self.workdir / "stdout.log"
        self._heap = heap
        self._jvm_options = list(jvm_options)
        self.startup_timeout = startup_timeout
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._formatted = False
        self._closed = False
        atexit.register(self.close)

    # ports are chosen on the first start and kept for restarts
    @property
    def port(self) -> int:
        if "port" not in self.ports:
            raise BrokerError("the broker has no port before its first start()")
        return self.ports["port"]

    @property
    def controller_port(self) -> int:
        return self.ports["controller_port"]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run_tool(
        self, main_class: str, args: list[str], timeout: float = 60.0, *, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``run_tool`` with this broker's Kafka version."""
        return run_tool(main_class, args, timeout, version=self.version, input=input)

    def consumer_groups_describe_all(self, timeout: float = 60.0) -> str:
        """``kafka-consumer-groups.sh --describe --all-groups`` against this broker."""
        return consumer_groups_describe_all(self.bootstrap, version=self.version, timeout=timeout)

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the broker (no-op if running) and wait until it serves clients."""
        if self._closed:
            raise BrokerError("broker was closed")
        if self.is_running():
            return
        lib = ensure_jars(self.version)
        if not self.ports:
            self.ports["port"] = self._requested_port or _free_port(self.host)
            self.ports["controller_port"] = _free_port(self.host)
            for name in self._extra_port_names:
                self.ports[name] = _free_port(self.host)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "server.properties"
        config.write_text(self._server_properties(), encoding="utf-8")
        option, log_text = _log_config(lib, self.log_path, "INFO")
        log_config = self.workdir / "log4j.properties"
        log_config.write_text(log_text, encoding="utf-8")

        if not self._formatted:
            self._format_storage(lib, config, option + str(log_config))
            self._formatted = True

        # Readiness is judged from log lines written after this offset, so a
        # restart does not mistake the previous run's "started" line.
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        jvm = [
            f"-Xmx{self._heap}",
            "-Djava.awt.headless=true",
            option + str(log_config),
            *self._jvm_options,
        ]
        with self.stdout_path.open("a", encoding="utf-8") as out:
            self._proc = _popen(
                _java_command(lib, "kafka.Kafka", [str(config)], jvm), out, subprocess.STDOUT
            )
        self._wait_ready(log_offset)

    def _server_properties(self) -> str:
        host, port, cport = self.host, self.port, self.controller_port
        props: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{cport}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            # One node: every internal topic must do with one replica, and few
            # partitions make the first group/transaction start quick.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            # The default allocates 128 MiB of heap for the log cleaner.
            "log.cleaner.dedupe.buffer.size": "2097152",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            # After a kill, the restarted broker cannot register until the
            # controller has expired its previous session (default 9 s); a
            # shorter session makes restart() in fault tests ~5 s faster.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        values = {"host": host, **self.ports}
        for key, value in self._extra_properties.items():
            props[key] = value.format(**values)
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def _format_storage(self, lib: Path, config: Path, log_option: str) -> None:
        args = ["format", "-t", _cluster_id(), "-c", str(config), "--ignore-formatted"]
        jvm = [*_TOOL_JVM_OPTIONS, log_option]
        proc = subprocess.run(
            _java_command(lib, tool_class("storage", self.version), args, jvm),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise BrokerError(
                f"formatting Kafka storage failed ({proc.returncode}):\n"
                f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
            )

    def _wait_ready(self, log_offset: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BrokerError(
                    self._failure(f"Kafka {self.version} exited with {code}", log_offset)
                )
            if self._log_has_ready_line(log_offset) and _port_open(self.host, self.port):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(
                    self._failure(
                        f"Kafka {self.version} not ready within {self.startup_timeout:.0f} s",
                        log_offset,
                    )
                )
            time.sleep(0.2)

    def _log_has_ready_line(self, offset: int) -> bool:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                return _READY_LINE.encode() in handle.read()
        except OSError:
            return False

    def _failure(self, what: str, log_offset: int) -> str:
        # The cause (e.g. a port in use) is usually an ERROR line followed by
        # pages of shutdown noise, so show both the errors and the tail.
        errors = _error_lines(self.log_path, log_offset)
        return (
            f"{what} (workdir {self.workdir})\n"
            f"--- errors in {self.log_path.name} ---\n{errors}\n"
            f"--- {self.log_path.name} (tail) ---\n{_tail(self.log_path)}\n"
            f"--- {self.stdout_path.name} (tail) ---\n{_tail(self.stdout_path)}"
        )

    def stop(self) -> None:
        """Shut down cleanly: SIGTERM, up to 15 s, then SIGKILL. Idempotent."""
        if self._proc is not None:
            _stop_process(self._proc)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would. Data stays for ``restart()``."""
        if self._proc is not None:
            if self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
            self._proc.wait()
            self._proc = None

    def restart(self) -> None:
        """Stop if running, then start again on the same ports and data dir."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and delete the work dir if this object created it. Idempotent."""
        self.stop()
        if not self._closed and self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._closed = True
