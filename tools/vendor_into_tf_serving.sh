#!/usr/bin/env bash
# Vendors this workspace's Remote Predict Op into a TensorFlow Serving fork.
#
#   tools/vendor_into_tf_serving.sh [--dry-run] FORK_DIR
#
# A thin entry point: the work (copy, edits of server_lib and WORKSPACE, label
# check, diff) is tools/vendor/vendor_into_tf_serving.py. See its --help.
set -euo pipefail

readonly WORKSPACE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

python="${WORKSPACE_DIR}/.venv/bin/python"
[[ -x "${python}" ]] || python="$(command -v python3 || true)"
if [[ -z "${python}" ]] || ! "${python}" -c 'import absl.flags' 2>/dev/null; then
  echo "vendor_into_tf_serving.sh: error: needs a Python 3 with absl-py; run 'tools/bazel info' once" \
       "to create ${WORKSPACE_DIR}/.venv, or 'pip install absl-py'" >&2
  exit 1
fi

# Accept the spelling shells users expect as well as absl's own.
args=()
for arg in "$@"; do
  case "${arg}" in
    --dry-run) args+=(--dry_run) ;;
    --source-dir=*) args+=("--source_dir=${arg#--source-dir=}") ;;
    *) args+=("${arg}") ;;
  esac
done

exec "${python}" "${WORKSPACE_DIR}/tools/vendor/vendor_into_tf_serving.py" \
  --source_dir="${WORKSPACE_DIR}" ${args[@]+"${args[@]}"}
