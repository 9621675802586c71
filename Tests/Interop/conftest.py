"""Fixtures for the interop test: Python stubs generated from proto/ at test time, the real rapport-server binary
started on a free loopback port, and a gRPC channel to it.

Nothing here uses Rapport's Swift code: a new user of another language has only the .proto files and the binary.
Set RAPPORT_SERVER_BIN to test a binary somewhere else than `swift build --show-bin-path`/rapport-server.
"""

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"

# How long the server may take to print its listening line.
STARTUP_TIMEOUT = 60.0
# How long it may take to stop after SIGTERM.
SHUTDOWN_TIMEOUT = 20.0

LISTENING = re.compile(r"^rapport-server listening on (?P<host>\S+):(?P<port>\d+)\s*$")
SECRET = re.compile(r"^\s*(?P<secret>rpk_[A-Za-z0-9]+)\s*$")


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The generated modules, from `python -m grpc_tools.protoc` over every .proto file, in a temp dir."""
    out = tmp_path_factory.mktemp("stubs")
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    assert protos, f"no .proto files under {PROTO_ROOT}"
    command = [
        sys.executable, "-m", "grpc_tools.protoc", "-I", str(PROTO_ROOT),
        f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *protos,
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"protoc failed:\n{done.stdout}\n{done.stderr}"
    # The generated `grpc/health/v1` directory has no __init__.py: the installed `grpc` package still wins the
    # import, and the health client comes from grpcio-health-checking (`grpc_health.v1`), as a user would do.
    sys.path.insert(0, str(out))
    from rapport.v1 import (
        api_keys_pb2, api_keys_pb2_grpc, changes_pb2, changes_pb2_grpc, clock_pb2, clock_pb2_grpc, common_pb2,
        customer360_pb2, customer360_pb2_grpc, customers_pb2, customers_pb2_grpc, engagement_pb2, engagement_pb2_grpc,
        ingest_pb2, ingest_pb2_grpc, merges_pb2, merges_pb2_grpc, outbox_pb2, outbox_pb2_grpc, privacy_pb2,
        privacy_pb2_grpc, rules_pb2, rules_pb2_grpc, segments_pb2, segments_pb2_grpc,
    )
    return SimpleNamespace(
        api_keys=api_keys_pb2, api_keys_grpc=api_keys_pb2_grpc, changes=changes_pb2, changes_grpc=changes_pb2_grpc,
        common=common_pb2, c360=customer360_pb2, c360_grpc=customer360_pb2_grpc, customers=customers_pb2,
        customers_grpc=customers_pb2_grpc, engagement=engagement_pb2, engagement_grpc=engagement_pb2_grpc,
        ingest=ingest_pb2, ingest_grpc=ingest_pb2_grpc, merges=merges_pb2, merges_grpc=merges_pb2_grpc,
        segments=segments_pb2, segments_grpc=segments_pb2_grpc, rules=rules_pb2, rules_grpc=rules_pb2_grpc,
        outbox=outbox_pb2, outbox_grpc=outbox_pb2_grpc, clock=clock_pb2, clock_grpc=clock_pb2_grpc,
        privacy=privacy_pb2, privacy_grpc=privacy_pb2_grpc,
    )


@pytest.fixture(scope="session")
def server_binary():
    """The built rapport-server (scripts/test.sh builds it before running this test)."""
    explicit = os.environ.get("RAPPORT_SERVER_BIN")
    if explicit:
        path = Path(explicit)
    else:
        try:
            done = subprocess.run(
                ["swift", "build", "--show-bin-path"], cwd=REPO, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            pytest.fail(f"`swift build --show-bin-path` failed ({error}); set RAPPORT_SERVER_BIN to the binary")
        assert done.returncode == 0, f"`swift build --show-bin-path` failed:\n{done.stderr}"
        path = Path(done.stdout.strip().splitlines()[-1]) / "rapport-server"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} does not exist: run `swift build --product rapport-server` first")
    return path


class RunningServer:
    """A rapport-server process and what it printed."""

    def __init__(self, binary: Path, log_path: Path, extra_args=()):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [str(binary), "--in-memory", "--host", "127.0.0.1", "--port", "0", *extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.output: list[str] = []
        # Drains stdout for the whole life of the process so that it never blocks on a full pipe.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.address = None
        self.admin_key = None

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr_tail(self) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def wait_until_listening(self, timeout: float):
        deadline = time.monotonic() + timeout
        expect_secret = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no listening line within {timeout:.0f} s; stdout so far: {self.output}\n"
                    f"stderr:\n{self.stderr_tail()}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue  # the deadline check above ends the wait
            if line is None:
                code = self.process.wait(timeout=SHUTDOWN_TIMEOUT)
                raise AssertionError(
                    f"rapport-server exited ({code}) before listening; stdout: {self.output}\n"
                    f"stderr:\n{self.stderr_tail()}")
            self.output.append(line)
            if expect_secret:
                match = SECRET.match(line)
                assert match, f"expected the admin secret on the line after 'Its secret:', got {line!r}"
                self.admin_key = match["secret"]
                expect_secret = False
            elif "Its secret:" in line:
                expect_secret = True
            elif match := LISTENING.match(line):
                self.address = f"{match['host']}:{match['port']}"
                return

    def stop(self) -> int:
        """SIGTERM, then a bounded wait (SIGKILL as a last resort, reported as a failure)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
                self.log.close()
                raise AssertionError(f"rapport-server did not stop within {SHUTDOWN_TIMEOUT:.0f} s of SIGTERM")
        self.reader.join(timeout=5)
        self.log.close()
        return self.process.returncode


def start_server(binary, directory, extra_args=()):
    running = RunningServer(binary, directory / "stderr.log", extra_args)
    try:
        running.wait_until_listening(STARTUP_TIMEOUT)
        assert running.admin_key, f"an empty store prints an admin key on first start; stdout: {running.output}"
    except BaseException:
        running.stop()
        raise
    return running


@pytest.fixture(scope="session")
def server(server_binary, tmp_path_factory):
    running = start_server(server_binary, tmp_path_factory.mktemp("server"))
    yield running
    code = running.stop()
    assert code == 0, f"rapport-server exited with {code} after SIGTERM; stderr:\n{running.stderr_tail()}"


# Where the manual clock of the automation server starts: 2026-01-01T00:00:00Z.
CLOCK_START = "2026-01-01T00:00:00Z"
CLOCK_START_SECONDS = 1_767_225_600


@pytest.fixture(scope="session")
def clock_server(server_binary, tmp_path_factory):
    """A second server on a manual clock, for rules that wait: time moves only when the test moves it."""
    running = start_server(
        server_binary, tmp_path_factory.mktemp("clock-server"), ["--manual-clock", "--clock-start", CLOCK_START])
    yield running
    code = running.stop()
    assert code == 0, f"rapport-server exited with {code} after SIGTERM; stderr:\n{running.stderr_tail()}"


@pytest.fixture(scope="session")
def clock_channel(clock_server):
    with grpc.insecure_channel(clock_server.address) as chan:
        grpc.channel_ready_future(chan).result(timeout=15)
        yield chan


@pytest.fixture(scope="session")
def channel(server):
    with grpc.insecure_channel(server.address) as chan:
        grpc.channel_ready_future(chan).result(timeout=15)
        yield chan


def bearer(secret: str):
    return (("authorization", f"Bearer {secret}"),)


@pytest.fixture(scope="session")
def admin(server):
    """Metadata carrying the admin key the server printed on first start."""
    return bearer(server.admin_key)


@pytest.fixture(scope="session")
def make_key(pb, channel, admin):
    """Creates an API key with a role (as admin) and returns its metadata."""
    keys = pb.api_keys_grpc.ApiKeyServiceStub(channel)

    def make(role, name):
        created = keys.CreateApiKey(pb.api_keys.CreateApiKeyRequest(name=name, role=role), metadata=admin, timeout=10)
        assert created.secret.startswith("rpk_"), created
        assert created.api_key.id.startswith("key_") and created.api_key.role == role, created
        return bearer(created.secret), created

    return make


@pytest.fixture(scope="session")
def marketing(pb, make_key):
    metadata, _ = make_key(pb.api_keys.ROLE_MARKETING, "interop-marketing")
    return metadata


@pytest.fixture(scope="session")
def analyst(pb, make_key):
    metadata, _ = make_key(pb.api_keys.ROLE_ANALYST, "interop-analyst")
    return metadata
