#!/usr/bin/env bash
# Regenerates LoadGenerator/Sources/Generated: internal Swift messages and gRPC *client* stubs for the four protos the load
# generator calls (health, common, customers, ingest), from the contract in ../proto. The main package's generated
# code (Sources/RapportProto) has `package` visibility and cannot be imported from this package, hence this copy.
# Uses protoc and the plugins built from the main package's own resolved versions, like scripts/generate-protos.sh.
# Commit the output; nothing is generated during a build. Run after changing one of these protos.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here/Sources/Generated"

(
    cd "$root"
    swift build -c release --product protoc-gen-swift >&2
    swift build -c release --product protoc-gen-grpc-swift-2 >&2
)
bin="$(cd "$root" && swift build -c release --show-bin-path)"

rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
cd "$root/proto"
protoc \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
    --swift_opt=Visibility=Internal,FileNaming=PathToUnderscores \
    --swift_out="$out" \
    --grpc-swift-2_opt=Visibility=Internal,FileNaming=PathToUnderscores,Server=false,Client=true \
    --grpc-swift-2_out="$out" \
    grpc/health/v1/health.proto rapport/v1/common.proto rapport/v1/customers.proto rapport/v1/ingest.proto
# common.proto declares no service: its (empty) .grpc.swift file is not needed.
rm -f "$out/rapport_v1_common.grpc.swift"
