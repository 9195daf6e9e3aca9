#!/usr/bin/env bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Starts and removes the container fleet the scenarios of tests/fleet run on.
#
#   tools/fleet/fleet.sh up DIR     start the hosts; write DIR/inventory.ini, DIR/hosts.tsv, DIR/id_ed25519
#   tools/fleet/fleet.sh down DIR   remove the containers listed in DIR/hosts.tsv (images stay)
#
# FLEET_PREFIX (default fjcloud-fleet) names the containers, FLEET_SSH_BASE_PORT
# (default 2290) places their sshd ports: molecule's fleet uses its own.
# FLEET_HOSTS (default: all) names the hosts to start, e.g. "b12-hash".
# FLEET_COUNT=N starts N hosts instead, the four kinds in turn, numbered:
# b12-hash-1, b12-lmdb-1, d13-hash-1, d13-kept-1, b12-hash-2, ... (the benchmark's fleet).
#
# Every container shares the host's network (all traffic stays on loopback):
# Postfix's `smtp inet` listener is off, mail is submitted with sendmail, and
# sshd listens on its own port of 127.0.0.1. Root logs in with a key made for
# this run only.

set -euo pipefail

# shellcheck source=tools/fleet/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Two fleets can coexist (make fleet, molecule) with their own names and ports.
SSH_BASE_PORT=${FLEET_SSH_BASE_PORT:-2290}
PREFIX=${FLEET_PREFIX:-fjcloud-fleet}
# name  release  kind: hash (the release's default), lmdb (default_database_type = lmdb),
# kept (a relay line and main.cf keys of the host's own that the role must leave alone)
HOSTS=(
    "b12-hash bookworm hash"
    "b12-lmdb bookworm lmdb"
    "d13-hash trixie hash"
    "d13-kept trixie kept"
)

# Runs inside a new container: $1 sshd port, $2 kind, $3 the public key.
# shellcheck disable=SC2016  # expanded inside the container
HOST_SETUP='
set -eu
port=$1 kind=$2 pubkey=$3
sed -i "s/^smtp[[:space:]]\+inet/#&/" /etc/postfix/master.cf
# No syslog in a container: Postfix logs to a file the tests read.
postconf -e maillog_file=/var/log/postfix.log
case $kind in
lmdb)
    postconf -e default_database_type=lmdb ;;
kept)
    printf "%s\n" "[other.example.net]:587 other-user:other-password" >/etc/postfix/sasl_passwd
    chmod 0600 /etc/postfix/sasl_passwd
    postmap /etc/postfix/sasl_passwd
    postconf -e message_size_limit=20480000 delay_warning_time=4h ;;
esac
mkdir -p /run/sshd /root/.ssh
chmod 0700 /root/.ssh
printf "%s\n" "$pubkey" >/root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
ssh-keygen -A >/dev/null
/usr/sbin/sshd -p "$port" -o ListenAddress=127.0.0.1
# service (not postfix start): the init script copies /etc/hosts into the chroot.
service postfix start >/dev/null
'

# The hosts to start, one name:release:kind per line.
host_specs() {
    local count=${FLEET_COUNT:-0} i spec name release kind
    if ((count == 0)); then
        for spec in "${HOSTS[@]}"; do
            printf '%s\n' "${spec// /:}"
        done
        return
    fi
    for ((i = 0; i < count; i++)); do
        spec=${HOSTS[i % ${#HOSTS[@]}]}
        read -r name release kind <<<"$spec"
        printf '%s-%d:%s:%s\n' "$name" $((i / ${#HOSTS[@]} + 1)) "$release" "$kind"
    done
}

container_name() {
    printf '%s-%s' "$PREFIX" "$1"
}

port_in_use() {
    ss -Htln "sport = :$1" | grep -q .
}

wait_for_sshd() {
    local port=$1 tries
    for tries in $(seq 50); do
        if ssh-keyscan -p "$port" 127.0.0.1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "fleet: sshd on port $port did not answer after $tries tries" >&2
    return 1
}

up() {
    local dir=$1
    require_packages "${CONTAINER_PACKAGES[@]}"
    mkdir -p "$dir"
    chmod 0700 "$dir"
    ssh-keygen -q -t ed25519 -N '' -C fjcloud-fleet -f "$dir/id_ed25519"
    : >"$dir/hosts.tsv"
    {
        echo '[fleet]'
        local i=0 spec name release kind port container
        for spec in $(host_specs); do
            IFS=: read -r name release kind <<<"$spec"
            i=$((i + 1))
            [[ -z ${FLEET_HOSTS:-} || " $FLEET_HOSTS " == *" $name "* ]] || continue
            port=$((SSH_BASE_PORT + i))
            container=$(container_name "$name")
            # A container left by an interrupted run would block the name.
            fleet_podman rm -f -t 0 --ignore "$container" >/dev/null
            if port_in_use "$port"; then
                echo "fleet: port $port is taken; set FLEET_SSH_BASE_PORT" >&2
                return 1
            fi
            fleet_podman run -d --pull never --name "$container" --hostname "$name.fleet.test" --init \
                --network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
                "$(fleet_image "$release")" sleep infinity >/dev/null
            printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$container" "$release" "$kind" "$port" >>"$dir/hosts.tsv"
            fleet_podman exec "$container" sh -c "$HOST_SETUP" - "$port" "$kind" "$(cat "$dir/id_ed25519.pub")"
            wait_for_sshd "$port"
            echo "$name ansible_port=$port"
        done
        echo
        echo '[fleet:vars]'
        echo 'ansible_host=127.0.0.1'
        echo 'ansible_user=root'
        echo "ansible_ssh_private_key_file=$dir/id_ed25519"
        echo "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"
        echo 'ansible_python_interpreter=/usr/bin/python3'
    } >"$dir/inventory.ini"
    echo "fleet: $(wc -l <"$dir/hosts.tsv") hosts up, inventory $dir/inventory.ini"
}

down() {
    local dir=$1 name container rest
    [[ -f $dir/hosts.tsv ]] || return 0
    while IFS=$'\t' read -r name container rest; do
        fleet_podman rm -f -t 0 "$container" >/dev/null 2>&1 || echo "fleet: could not remove $container ($name)" >&2
    done <"$dir/hosts.tsv"
}

case ${1:-} in
up | down)
    [[ -n ${2:-} ]] || { echo "usage: $0 up|down DIR" >&2; exit 2; }
    "$1" "$2" ;;
*)
    echo "usage: $0 up|down DIR" >&2
    exit 2 ;;
esac
