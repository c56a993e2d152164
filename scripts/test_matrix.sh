#!/usr/bin/env bash
# `make test-matrix`: ansible-test sanity and units with newer ansible-core releases, which need
# Python 3.12+. Each release gets its own virtual environment under build/matrix-venvs/ (reused when present).
# Usage: scripts/test_matrix.sh [CORE_VERSION...]   (default: 2.20 2.21)
set -euo pipefail

repository_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
collection_copy="${repository_root}/build/collections/ansible_collections/nomadops/nomad"
matrix_python_version=${MATRIX_PYTHON:-3.12}
core_versions=("$@")
if [ ${#core_versions[@]} -eq 0 ]; then
    core_versions=(2.20 2.21)
fi

find_python() {
    local version=$1 candidate
    for candidate in "${PYENV_ROOT:-${HOME}/.pyenv}"/versions/"${version}".*/bin/python"${version}" "$(command -v "python${version}" || true)"; do
        if [ -x "${candidate}" ] && "${candidate}" -c 'pass' 2>/dev/null; then
            echo "${candidate}"
            return 0
        fi
    done
    echo "test-matrix: no working python${version} found (pyenv or PATH)" >&2
    return 1
}

next_minor() {
    local major=${1%%.*} minor=${1#*.}
    echo "${major}.$((minor + 1))"
}

python=$(find_python "${matrix_python_version}")
python_dir=$(dirname "${python}")
failures=()

make -C "${repository_root}" --no-print-directory collection

for core in "${core_versions[@]}"; do
    venv="${repository_root}/build/matrix-venvs/core-${core}"
    echo "=== ansible-core ${core} on Python ${matrix_python_version} (${venv})"
    if [ ! -x "${venv}/bin/ansible-test" ]; then
        "${python}" -m venv "${venv}"
        "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
            "ansible-core>=${core},<$(next_minor "${core}")" -r "${repository_root}/requirements.txt"
    fi
    "${venv}/bin/python" "${repository_root}/scripts/install_get_pip_standin.py" "${matrix_python_version}"
    for command in sanity units; do
        if (cd "${collection_copy}" && PATH="${venv}/bin:${python_dir}:${PATH}" \
                "${venv}/bin/ansible-test" "${command}" --venv --python "${matrix_python_version}"); then
            echo "--- ansible-core ${core} ${command}: passed"
        else
            echo "--- ansible-core ${core} ${command}: FAILED"
            failures+=("${core}/${command}")
        fi
    done
done

if [ ${#failures[@]} -gt 0 ]; then
    echo "test-matrix: FAILED: ${failures[*]}"
    exit 1
fi
echo "test-matrix: all passed (${core_versions[*]})"
