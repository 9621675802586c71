#!/usr/bin/env bash
# Runs every test: the Swift suites (which include a smoke test of the real rapport-server binary) and the
# Python interop test that calls the server using only the .proto files. Installs what a fresh machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s libsqlite3-dev >/dev/null 2>&1; then
    apt-get update
    apt-get install -y libsqlite3-dev
fi
# The interop test's Python packages: from the Python at hand when it has them, else into a virtual environment of
# the package's own (Debian's Python refuses system-wide pip installs, and may lack pip and venv).
python=python3
if ! python3 -c 'import grpc, grpc_tools, grpc_health, grpc_status, pytest' >/dev/null 2>&1; then
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt-get update
        apt-get install -y python3-venv
    fi
    [ -x .build/interop-venv/bin/pip ] || python3 -m venv --clear .build/interop-venv
    python=.build/interop-venv/bin/python
    "$python" -m pip install --quiet grpcio grpcio-tools grpcio-health-checking grpcio-status pytest
fi

swift build --product rapport-server
swift test
"$python" -m pytest -q Tests/Interop
