#!/usr/bin/env bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# `make fleet`: build the images (when missing or outdated: the fleet's, and the
# Execution Environment's of `make ee`), start the fleet, run the scenarios of
# tests/fleet against it (test_ee.py runs jobs in the EE image), remove the
# containers. Prints how long each phase took. Extra arguments go to pytest
# (e.g. -k rotation).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
VENV=${VENV:-$ROOT/.venv}
[[ -x $VENV/bin/pytest ]] || make -C "$ROOT" venv
# EE_IMAGE, EE_VENV, CONTAINERS_CONF for tests/fleet/test_ee.py.
# shellcheck source=tools/ee/lib.sh
source "$ROOT/tools/ee/lib.sh"

FLEET_DIR=$(mktemp -d /tmp/fjcloud-fleet.XXXXXX)
export FLEET_DIR
cleanup() {
    "$ROOT/tools/fleet/fleet.sh" down "$FLEET_DIR"
    rm -rf "$FLEET_DIR"
}
timings=()
phase() {
    local label=$1 start=$SECONDS rc=0
    shift
    "$@" || rc=$?
    timings+=("$(printf '%-14s %4d s' "$label" $((SECONDS - start)))")
    return "$rc"
}
report() {
    printf 'fleet: %s\n' "${timings[@]}"
}
trap 'report; cleanup' EXIT

phase 'image build' "$ROOT/tools/fleet/images.sh"
phase 'EE image' "$ROOT/tools/ee/build.sh"
phase 'containers up' "$ROOT/tools/fleet/fleet.sh" up "$FLEET_DIR"
phase 'scenarios' env PATH="$VENV/bin:$PATH" "$VENV/bin/pytest" -x -s --durations=0 -p no:cacheprovider "$ROOT/tests/fleet" "$@"
