# shellcheck shell=bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Shared by the fleet and EE scripts: the packages they run, how podman is
# called on this machine kind.

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

# Every package the container scripts run, by name: Debian's podman only
# recommends catatonit (which `podman run --init` needs), runc, uidmap,
# slirp4netns and fuse-overlayfs, so a podman installed without its
# recommendations fails later with "container-init binary not found".
# iproute2 gives ss (is a port taken), openssh-client ssh, ssh-keygen, ssh-keyscan.
# shellcheck disable=SC2034  # used by the scripts that source this file
CONTAINER_PACKAGES=(podman runc catatonit uidmap slirp4netns fuse-overlayfs iproute2 openssh-client)

package_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == 'install ok installed' ]]
}

# Installs the packages named that are missing (as root), then checks that
# every one is there: a failed or partial install stops the script here.
require_packages() {
    local missing=() pkg
    for pkg; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "installing ${missing[*]}"
    # A fresh machine may have no package lists yet.
    apt-get -q update </dev/null >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" </dev/null >/dev/null
    for pkg in "${missing[@]}"; do
        package_installed "$pkg" || { echo "package $pkg is still not installed" >&2; return 1; }
    done
}

# The first URIs: of the apt sources (the snapshot URL in its comment does not
# work for debootstrap).
debian_mirror() {
    awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources
}

# crun fails on this machine's hybrid cgroup layout: runc with cgroupfs works.
fleet_podman() {
    podman --runtime runc --cgroup-manager=cgroupfs "$@"
}
