#!/usr/bin/env bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# `make ee`: the Execution Environment image localhost/fjcloud-mail-ee:<version
# of galaxy.yml>, built by ansible-builder from
# examples/execution-environment/execution-environment.yml and the collection's
# tarball built from this checkout, on a Debian 12 base image made with
# debootstrap (no image registry is reachable here).
#
# Both images are cached: the base under a tag with a digest of its definition,
# the EE with a label holding a digest of its definition, its base and the
# collection; each is built again only when its digest changes. Installs what
# it needs (as root, Debian 12). Prints the sizes and the time taken.
#
#   tools/ee/build.sh                 build what is missing or outdated
#   EE_REBUILD=1 tools/ee/build.sh    build both images again

set -euo pipefail

# shellcheck source=tools/fleet/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../fleet/lib.sh"
# shellcheck source=tools/ee/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EE_DEFINITION_DIR=$EE_ROOT/examples/execution-environment
EE_BUILD_DIR=$EE_ROOT/.build/ee
# python3-venv for .venv-ee; debootstrap makes the base.
EE_PACKAGES=("${CONTAINER_PACKAGES[@]}" debootstrap python3-venv)

EE_BASE_NAME=localhost/fjcloud-mail-ee-base
EE_BASE_SUITE=bookworm
EE_BASE_PACKAGES=python3,python3-pip,python3-venv,ca-certificates
# Run in the base's root file system after debootstrap: the release's updates
# (security included), then apt without recommends or documentation, so that
# the packages the EE build adds stay small too.
# shellcheck disable=SC2016  # expanded in the chroot
EE_BASE_SETUP='
set -eu
mirror=$1 suite=$2
cat >/etc/apt/sources.list <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
apt-get -q update >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get -q -y upgrade >/dev/null
printf "%s\n" "APT::Install-Recommends \"0\";" "APT::Install-Suggests \"0\";" >/etc/apt/apt.conf.d/90-no-recommends
printf "%s\n" "path-exclude=/usr/share/doc/*" "path-include=/usr/share/doc/*/copyright" \
    "path-exclude=/usr/share/man/*" "path-exclude=/usr/share/info/*" "path-exclude=/usr/share/locale/*" \
    >/etc/dpkg/dpkg.cfg.d/90-no-docs
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*
find /usr/share/doc -type f ! -name copyright -delete
# podman gives each container these: those of the build host stay out of the image.
: >/etc/resolv.conf
: >/etc/hostname
'
# The host's CA bundle, which may hold the CA of an HTTPS proxy: mounted over
# the image's bundle while the build downloads (pip), never copied into a layer.
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
DIGEST_LABEL=org.fjcloud.mail.ee-digest

base_image() {
    local digest
    digest=$(printf '%s\n' "$EE_BASE_SUITE" "$EE_BASE_PACKAGES" "$EE_BASE_SETUP" | sha256sum | cut -c1-8)
    printf '%s:%s-%s' "$EE_BASE_NAME" "$EE_BASE_SUITE" "$digest"
}

install_tools() {
    require_packages "${EE_PACKAGES[@]}"
    local stamp=$EE_VENV/.requirements
    if ! cmp -s "$EE_ROOT/tools/ee/requirements.txt" "$stamp"; then
        echo "ee: installing the tools into $EE_VENV"
        rm -rf "$EE_VENV"
        python3 -m venv "$EE_VENV"
        "$EE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
            -r "$EE_ROOT/tools/ee/requirements.txt" >"$EE_VENV.log" 2>&1 || {
            tail -n 20 "$EE_VENV.log" >&2
            return 1
        }
        rm -f "$EE_VENV.log"
        cp "$EE_ROOT/tools/ee/requirements.txt" "$stamp"
    fi
}

build_base() {
    local image=$1 start=$SECONDS rootfs
    if [[ -z ${EE_REBUILD:-} ]] && podman image exists "$image"; then
        echo "ee: base image $image is there"
        return
    fi
    rootfs=$(mktemp -d /var/tmp/ee-rootfs.XXXXXX)
    # shellcheck disable=SC2064  # expand now: the trap must remove this rootfs
    trap "rm -rf '$rootfs' '$rootfs.log'" RETURN
    echo "ee: building $image (debootstrap $EE_BASE_SUITE)"
    {
        DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include="$EE_BASE_PACKAGES" \
            "$EE_BASE_SUITE" "$rootfs" "$(debian_mirror)" &&
            chroot "$rootfs" sh -c "$EE_BASE_SETUP" - "$(debian_mirror)" "$EE_BASE_SUITE"
    } >"$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        return 1
    }
    tar -C "$rootfs" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
    echo "ee: base image built in $((SECONDS - start)) s, $(image_size "$image")"
    # Base images of an older definition only take disk space.
    podman images --format '{{.Repository}}:{{.Tag}}' "$EE_BASE_NAME" | grep -vxF "$image" |
        xargs -r podman image rm >/dev/null || true
}

image_size() {
    podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }'
}

# The collection's tarball, built from the checkout into $1; prints its path.
build_collection() {
    "$EE_VENV/bin/ansible-galaxy" collection build --force --output-path "$1" "$EE_ROOT" >"$1/galaxy.log" 2>&1 || {
        cat "$1/galaxy.log" >&2
        return 1
    }
    printf '%s/fjcloud-mail-%s.tar.gz' "$1" "$EE_VERSION"
}

build_ee() {
    local base=$1 start=$SECONDS work tarball digest old_id
    work=$EE_BUILD_DIR
    rm -rf "$work"
    mkdir -p "$work"
    cp -a "$EE_DEFINITION_DIR/." "$work/"
    if ! grep -qF "collections/fjcloud-mail-$EE_VERSION.tar.gz" "$work/execution-environment.yml"; then
        echo "ee: examples/execution-environment/execution-environment.yml must install" \
            "collections/fjcloud-mail-$EE_VERSION.tar.gz (the version of galaxy.yml)" >&2
        return 1
    fi
    tarball=$(build_collection "$work")
    # The definition, its base, the tools, and the collection's content:
    # MANIFEST.json holds the digest of FILES.json, which holds every file's.
    digest=$({
        echo "$base"
        (cd "$EE_ROOT" && sha256sum tools/ee/build.sh tools/ee/requirements.txt examples/execution-environment/*)
        tar -xzOf "$tarball" MANIFEST.json
    } | sha256sum | cut -c1-16)
    old_id=$(podman image inspect --format '{{.Id}}' "$EE_IMAGE" 2>/dev/null || true)
    if [[ -z ${EE_REBUILD:-} && -n $old_id ]] &&
        [[ $(podman image inspect --format "{{index .Labels \"$DIGEST_LABEL\"}}" "$EE_IMAGE") == "$digest" ]]; then
        echo "ee: image $EE_IMAGE is up to date ($DIGEST_LABEL $digest)"
        return
    fi
    echo "ee: building $EE_IMAGE from $(basename "$tarball") on $base"
    (cd "$work" && "$EE_VENV/bin/ansible-builder" build --file execution-environment.yml --context context \
        --tag "$EE_IMAGE" --container-runtime podman --build-arg "EE_BASE_IMAGE=$base" --verbosity 2 \
        --extra-build-cli-args "--network=host --pull=never --layers=false --label=$DIGEST_LABEL=$digest
            --volume=$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro") >"$work/build.log" 2>&1 || {
        tail -n 40 "$work/build.log" >&2
        echo "ee: ansible-builder failed; its whole output: $work/build.log" >&2
        return 1
    }
    # The image this one replaces, if this script built it and nothing else tags it.
    if [[ -n $old_id && $old_id != "$(podman image inspect --format '{{.Id}}' "$EE_IMAGE")" ]] &&
        [[ -n $(podman image inspect --format "{{index .Labels \"$DIGEST_LABEL\"}}" "$old_id") ]] &&
        [[ -z $(podman image inspect --format '{{join .RepoTags ""}}' "$old_id") ]]; then
        podman image rm "$old_id" >/dev/null || true
    fi
    echo "ee: image built in $((SECONDS - start)) s"
}

report() {
    local collection
    collection=$(podman run --rm --network=none "$EE_IMAGE" \
        du -sk /usr/share/ansible/collections/ansible_collections/fjcloud/mail | cut -f1)
    echo "ee: $EE_IMAGE: $(image_size "$EE_IMAGE"), of which the collection $collection kB" \
        "(base $(image_size "$1")); make ee took $((SECONDS - started)) s"
}

started=$SECONDS
install_tools
base=$(base_image)
build_base "$base"
build_ee "$base"
report "$base"
