# shellcheck shell=bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Shared by tools/ee/build.sh and tools/fleet/run.sh (which passes these to the
# EE tests): where the EE's tools, definition and image are.

EE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# ansible-builder, ansible-runner, ansible-navigator (tools/ee/requirements.txt).
EE_VENV=$EE_ROOT/.venv-ee
EE_VERSION=$(awk '$1 == "version:" { print $2; exit }' "$EE_ROOT/galaxy.yml")
EE_IMAGE=localhost/fjcloud-mail-ee:$EE_VERSION
# The tools call podman themselves: they get this machine kind's settings from
# a configuration of their own.
CONTAINERS_CONF=$EE_ROOT/tools/ee/containers.conf
export EE_VENV EE_IMAGE CONTAINERS_CONF
