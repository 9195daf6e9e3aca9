#!/usr/bin/env bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Installs what the container fleet needs and builds its base images, one per
# Debian release, from Debian's archive (no image registry is reachable here).
# An image that exists is kept: only missing images are built.
#
#   tools/fleet/images.sh            install the tools, build missing images
#   FLEET_REBUILD=1 tools/fleet/images.sh   build them again

set -euo pipefail

# shellcheck source=tools/fleet/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_image() {
    local suite=$1 packages image
    packages=$(fleet_packages "$suite")
    image=$(fleet_image "$suite")
    if [[ -z ${FLEET_REBUILD:-} ]] && fleet_podman image exists "$image"; then
        echo "fleet: image $image is there"
        return
    fi
    local rootfs
    rootfs=$(mktemp -d /var/tmp/fleet-rootfs.XXXXXX)
    # shellcheck disable=SC2064  # expand now: the trap must remove this rootfs
    trap "rm -rf '$rootfs'" RETURN
    echo "fleet: building $image (debootstrap $suite)"
    DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include="$packages" \
        "$suite" "$rootfs" "$(debian_mirror)" >"$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        return 1
    }
    rm -f "$rootfs.log"
    tar -C "$rootfs" -c . | fleet_podman import --quiet - "$image" >/dev/null
    # Images of an older definition of this release only take disk space.
    fleet_podman images --format '{{.Repository}}:{{.Tag}}' "$FLEET_IMAGE" | grep -F ":$suite" | grep -vxF "$image" |
        xargs -r podman --runtime runc --cgroup-manager=cgroupfs image rm >/dev/null || true
}

require_packages "${CONTAINER_PACKAGES[@]}" debootstrap
build_image bookworm
build_image trixie
