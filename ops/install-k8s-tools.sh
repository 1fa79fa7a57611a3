#!/usr/bin/env bash
# Install what renders and validates ops/k8s offline, into .local/tools (never committed):
#   - kustomize, built from its Go module (sigs.k8s.io/kustomize/kustomize/v5);
#   - KEDA's ScaledObject CRD, read from KEDA's Go module zip (config/crd/bases/), and
#     its Redis scaler's source (the trigger metadata keys it accepts).
# The Kubernetes API schemas come with the kubernetes-validate wheel (ops/install.sh).
# Only the Go module proxy is used. Idempotent: a second run checks and exits.
# Prints three paths, one a line: the kustomize binary, the CRD, the Redis scaler source.
set -euo pipefail
cd "$(dirname "$0")/.."
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.0}
KEDA_VERSION=${KEDA_VERSION:-v2.18.1}
tools=$PWD/.local/tools
kustomize=$tools/bin/kustomize
crd=$tools/keda-$KEDA_VERSION/keda.sh_scaledobjects.yaml
scaler=$tools/keda-$KEDA_VERSION/redis_scaler.go

# The Go toolchain of this machine's image lives there, not always on PATH.
PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || {
  echo "ops/install-k8s-tools.sh: Go is required to build kustomize (Go >= 1.24)" >&2
  exit 1
}
if ! { [ -x "$kustomize" ] && "$kustomize" version | grep -qx "$KUSTOMIZE_VERSION"; }; then
  mkdir -p "$tools/bin"
  GOBIN="$tools/bin" GOFLAGS=-buildvcs=false go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
fi
if [ ! -s "$crd" ] || [ ! -s "$scaler" ]; then
  # go mod download extracts the module into the module cache and names the folder.
  dir=$(cd /tmp && go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$(dirname "$crd")"
  cp "$dir/config/crd/bases/keda.sh_scaledobjects.yaml" "$crd"
  cp "$dir/pkg/scalers/redis_scaler.go" "$scaler"
  chmod u+w "$crd" "$scaler"
fi
echo "$kustomize"
echo "$crd"
echo "$scaler"
