#!/usr/bin/env bash
# Render the collection's documentation into docs/build/html (run by `make docs`; works offline).
# The collection is read from ANSIBLE_COLLECTIONS_PATH, which the Makefile points at build/collections.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

rm -rf rst
mkdir -p rst
chmod og-w rst  # antsibull-docs wants its output directory writable only by its owner
antsibull-docs \
    --config-file antsibull-docs.cfg \
    collection \
    --cleanup everything \
    --fail-on-error \
    --use-current \
    --dest-dir rst \
    nomadops.nomad
cp index.rst rst/index.rst

sphinx-build -M html rst build -c . --jobs auto --quiet
echo "docs: HTML in $(pwd)/build/html/index.html"
