#!/bin/sh
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The package manager of ansible-builder 3 on a Debian base image
# (options.package_manager_path): its build scripts call a dnf-style
# `install -y [OPTIONS] PACKAGES` and `clean all`, which this maps to apt-get.
set -eu

command=${1:-}
[ $# -gt 0 ] && shift
case $command in
install)
    packages=
    for arg in "$@"; do
        case $arg in
        -*) ;;  # dnf's options (-y, --nodocs, ...): apt-get gets its own below
        *) packages="$packages $arg" ;;
        esac
    done
    [ -n "$packages" ] || exit 0
    apt-get -q update
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends $packages
    ;;
clean)
    apt-get clean
    rm -rf /var/lib/apt/lists/*
    ;;
*)
    echo "apt-get-as-dnf: unsupported command '$command' (install, clean)" >&2
    exit 2
    ;;
esac
