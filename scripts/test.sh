#!/usr/bin/env bash
# Runs every test: the Swift suites (which include a smoke test of the real rapport-server binary) and the
# Python interop test that calls the server using only the .proto files. Installs what a fresh machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s libsqlite3-dev >/dev/null 2>&1; then
    apt-get update
    apt-get install -y libsqlite3-dev
fi
if ! python3 -c 'import grpc, grpc_tools, grpc_health, grpc_status, pytest' >/dev/null 2>&1; then
    python3 -m pip install --quiet grpcio grpcio-tools grpcio-health-checking grpcio-status pytest
fi

swift build --product rapport-server
swift test
python3 -m pytest -q Tests/Interop
