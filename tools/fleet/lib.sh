# shellcheck shell=bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Shared by the fleet scripts: how podman is called on this machine kind.

export FLEET_IMAGE=localhost/fjcloud-mail-fleet

# What each release's image holds: python3 (and python3-apt, which Ansible's apt
# module needs) for Ansible, openssh-server to be reached like a real host;
# postfix-lmdb only on bookworm (the lmdb host runs bookworm).
FLEET_BASE_PACKAGES=python3,python3-apt,postfix,libsasl2-modules,ca-certificates,openssh-server
fleet_packages() {
    case $1 in
    bookworm) printf '%s,postfix-lmdb' "$FLEET_BASE_PACKAGES" ;;
    *) printf '%s' "$FLEET_BASE_PACKAGES" ;;
    esac
}

# The image of a release, tagged with a digest of its definition: a changed
# package list gives a new tag, so a cached image is never an outdated one.
fleet_image() {
    local digest
    digest=$(printf '%s %s' "$1" "$(fleet_packages "$1")" | sha256sum | cut -c1-8)
    printf '%s:%s-%s' "$FLEET_IMAGE" "$1" "$digest"
}

# crun fails on this machine's hybrid cgroup layout: runc with cgroupfs works.
fleet_podman() {
    podman --runtime runc --cgroup-manager=cgroupfs "$@"
}
