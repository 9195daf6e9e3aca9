# shellcheck shell=bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Shared by the fleet scripts: how podman is called on this machine kind.

export FLEET_IMAGE=localhost/fjcloud-mail-fleet

# crun fails on this machine's hybrid cgroup layout: runc with cgroupfs works.
fleet_podman() {
    podman --runtime runc --cgroup-manager=cgroupfs "$@"
}
