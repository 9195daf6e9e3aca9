#!/usr/bin/env bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The one command that runs the whole test suite of the fjcloud.mail
# collection on a fresh Debian 12 machine (as root), installing what it needs:
#
#   tools/test.sh [all|sanity|units|functional|lint|molecule ...]   (default: all)
#   tools/test.sh setup     only install (apt packages, .venv): used by tools/demo.sh
#
# PYTHON=/path/to/python3 selects the interpreter the suite runs on (default:
# python3.11, else python3, from PATH); each interpreter gets its own venv,
# .venv for the default and .venv-<version> for a chosen one, e.g.
#   PYTHON=/usr/bin/python3 tools/test.sh            (Debian's 3.11.2)
#   PYTHON=~/.pyenv/versions/3.11.7/bin/python3 tools/test.sh
#
# Setup: apt packages and the .venv from tests/requirements.txt (always); for
# sanity also the offline pip bootstrap of ansible-test and a fresh copy of the
# checkout in .build/ansible_collections/fjcloud/mail. A setup failure stops
# the run.
# Stages:
#   sanity      ansible-test sanity, then ansible-doc for every module and role
#   lint        ansible-lint --profile production (runs yamllint), shellcheck
#   units       pytest tests/unit
#   functional  pytest tests/functional
#   molecule    molecule test for every scenario in extensions/molecule/
# Every selected stage runs even when an earlier one failed; the exit status
# is non-zero when any stage failed.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [[ -n ${PYTHON:-} ]]; then
    if ! PYTHON_FULL_VERSION=$("$PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null); then
        printf 'PYTHON=%s is not a working Python interpreter\n' "$PYTHON" >&2
        exit 2
    fi
    VENV="$ROOT/.venv-$PYTHON_FULL_VERSION"
else
    VENV="$ROOT/.venv"
fi
BUILD_ROOT="$ROOT/.build"
COLLECTION_DIR="$BUILD_ROOT/ansible_collections/fjcloud/mail"
REQUIREMENTS="$ROOT/tests/requirements.txt"
VENV_STAMP="$VENV/.fjcloud-requirements.sha256"

APT_PACKAGES=(
    ca-certificates
    git
    libsasl2-modules
    make
    postfix
    python3
    python3-venv
    shellcheck
)

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1

# ---------------------------------------------------------------------------
# stage bookkeeping

STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_SECONDS=()
CURRENT_STAGE=''
CURRENT_START=''
SUITE_START=$EPOCHREALTIME

banner() {
    printf '\n======== %s ========\n' "$*"
}

notice() {
    printf '%s\n' "$*"
}

elapsed_since() {
    # seconds since the EPOCHREALTIME value $1, with one decimal
    awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'
}

record() {
    STAGE_NAMES+=("$1")
    STAGE_RESULTS+=("$2")
    STAGE_SECONDS+=("$3")
}

print_summary() {
    local i failed=0
    banner "Summary"
    for i in "${!STAGE_NAMES[@]}"; do
        printf '  %-8s %7ss  %s\n' "${STAGE_RESULTS[$i]}" "${STAGE_SECONDS[$i]}" "${STAGE_NAMES[$i]}"
        if [[ ${STAGE_RESULTS[$i]} == FAIL ]]; then
            failed=1
        fi
    done
    printf '  total    %7ss\n' "$(elapsed_since "$SUITE_START")"
    if ((failed)); then
        notice "RESULT: FAILED"
    else
        notice "RESULT: PASSED"
    fi
}

on_exit() {
    local rc=$?
    if [[ -n $CURRENT_STAGE ]]; then
        # a setup step aborted the run
        record "$CURRENT_STAGE" FAIL "$(elapsed_since "$CURRENT_START")"
        CURRENT_STAGE=''
    fi
    print_summary
    exit "$rc"
}

# Setup steps run in this shell (they change PATH and the environment) and
# abort the whole run when they fail.
setup_step() {
    local name=$1
    shift
    banner "SETUP: $name"
    CURRENT_STAGE="setup: $name"
    CURRENT_START=$EPOCHREALTIME
    "$@"
    record "setup: $name" ok "$(elapsed_since "$CURRENT_START")"
    CURRENT_STAGE=''
}

# Test stages run in a subshell with errexit in force; a failure is recorded
# and the next stage runs.
OVERALL_RC=0
stage() {
    local name=$1 start rc
    shift
    banner "STAGE: $name"
    start=$EPOCHREALTIME
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    if ((rc == 0)); then
        record "$name" PASS "$(elapsed_since "$start")"
    elif ((rc == 99)); then
        record "$name" SKIP "$(elapsed_since "$start")"
    else
        notice "stage '$name' failed (exit code $rc)"
        record "$name" FAIL "$(elapsed_since "$start")"
        OVERALL_RC=1
    fi
}

# ---------------------------------------------------------------------------
# setup steps

as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -E "$@"
    else
        notice "root is needed to run: $*"
        return 1
    fi
}

install_apt_packages() {
    local pkg missing=() added_policy=0
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        notice "all present: ${APT_PACKAGES[*]}"
        return 0
    fi
    notice "missing: ${missing[*]}"

    # Postfix: the "Internet Site" configuration writes /etc/postfix/main.cf
    # ("No configuration" would leave none).
    printf '%s\n' 'postfix postfix/main_mailer_type select Internet Site' |
        as_root debconf-set-selections

    # Installing must not start services (postfix would bind port 25 outside
    # the tests' control): deny starts for the duration of the install unless
    # the machine already has a policy.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        added_policy=1
    fi

    local rc=0
    as_root apt-get -q update </dev/null || rc=$?
    if ((rc == 0)); then
        as_root apt-get -q install -y --no-install-recommends "${missing[@]}" </dev/null || rc=$?
    fi
    if ((added_policy)); then
        as_root rm -f /usr/sbin/policy-rc.d
    fi
    if ((rc != 0)); then
        return "$rc"
    fi

    if [[ ! -e /etc/postfix/main.cf && -e /usr/share/postfix/main.cf.debian ]]; then
        as_root cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf
    fi
}

find_python() {
    local candidate
    if [[ -n ${PYTHON:-} ]]; then
        command -v "$PYTHON"
        return 0
    fi
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    notice "no python3.11 or python3 on PATH"
    return 1
}

requirements_stamp() {
    # what the venv was built from: the requirements and the base interpreter
    {
        sha256sum <"$REQUIREMENTS"
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

setup_venv() {
    local python
    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
        python=$(find_python)
        notice "creating $VENV with $python ($("$python" -V 2>&1))"
        rm -rf "$VENV"
        "$python" -m venv "$VENV"
    fi
    if [[ -f $VENV_STAMP && $(cat "$VENV_STAMP") == "$(requirements_stamp)" ]]; then
        notice "requirements unchanged since the last install: $(cat "$VENV_STAMP")"
    else
        rm -f "$VENV_STAMP"
        "$VENV/bin/python" -m pip install -r "$REQUIREMENTS"
        requirements_stamp >"$VENV_STAMP"
    fi
    export PATH="$VENV/bin:$PATH"
    export VIRTUAL_ENV="$VENV"
    hash -r
    PYTHON_VERSION=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    notice "python $PYTHON_VERSION: $(command -v python)"
    ansible --version 2>&1 | sed -n 1p
}

setup_get_pip() {
    # ansible-test bootstraps pip in each of its virtual environments with a
    # get-pip.py it downloads from a host that is not reachable here, unless a
    # copy is cached under the name of the pip version it wants.
    local pip_version cache
    pip_version=$(python - "$PYTHON_VERSION" <<'EOF'
import re
import sys
import types

try:
    # what ansible-test itself computes for its virtual environments
    from ansible_test._internal.python_requirements import get_venv_packages
    print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))['pip'])
except (ImportError, AttributeError, KeyError, TypeError):
    # the internals moved: read the default from the source instead
    import ansible_test
    path = ansible_test.__path__[0] + '/_internal/python_requirements.py'
    with open(path, encoding='utf-8') as source:
        match = re.search(r"""\bpip=['"]([0-9][0-9.]*)['"]""", source.read())
    if not match:
        sys.exit('cannot tell which pip version ansible-test wants (%s)' % path)
    print(match.group(1))
EOF
    )
    cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    notice "ansible-test wants pip $pip_version: $cache"
    if [[ -s $cache ]]; then
        notice "present"
    else
        mkdir -p "$(dirname "$cache")"
        cp "$ROOT/tools/get_pip_standin.py" "$cache.tmp"
        mv "$cache.tmp" "$cache"
        notice "written from tools/get_pip_standin.py"
    fi
}

setup_collection_tree() {
    # ansible-test only runs from .../ansible_collections/<namespace>/<name>,
    # and os.getcwd() resolves symlinks: copy the checkout there.
    rm -rf "$BUILD_ROOT"
    mkdir -p "$COLLECTION_DIR"
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # tracked plus untracked-but-not-ignored files, as they are on disk
        local path
        git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' path; do
                if [[ -e $ROOT/$path || -L $ROOT/$path ]]; then
                    printf '%s\0' "$path"
                fi
            done |
            tar -C "$ROOT" --null --no-recursion -T - -cf - |
            tar -C "$COLLECTION_DIR" -xf -
    else
        tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./.build \
            --exclude=./tests/output --exclude=__pycache__ --exclude='*.pyc' \
            --exclude=./.pytest_cache -cf - . |
            tar -C "$COLLECTION_DIR" -xf -
    fi
    # ansible-test lists content with git when it finds a .git directory in or
    # above the collection; above it is this checkout, in which .build is
    # ignored, so it would see no files at all. A repository of its own makes
    # it list the copy (untracked, not ignored).
    git -C "$COLLECTION_DIR" init -q
    notice "$(find "$COLLECTION_DIR" -path "$COLLECTION_DIR/.git" -prune -o -type f -print | wc -l) files in $COLLECTION_DIR"
}

# ---------------------------------------------------------------------------
# test stages

run_sanity() {
    cd "$COLLECTION_DIR"
    rm -rf tests/output
    # Findings are fixed, never ignored.
    local ignores
    ignores=$(grep -Hnv -e '^[[:space:]]*$' -e '^[[:space:]]*#' tests/sanity/ignore-*.txt 2>/dev/null || true)
    if [[ -n $ignores ]]; then
        notice "sanity ignore entries are not allowed:"
        printf '%s\n' "$ignores"
        return 1
    fi
    ansible-test sanity --python "$PYTHON_VERSION"
}

run_docs() {
    local collections_path="$BUILD_ROOT" failed=0 count=0 path name kind fqcn out
    cd "$COLLECTION_DIR"
    for path in plugins/modules/*.py roles/*/; do
        [[ -e $path ]] || continue
        case $path in
            plugins/modules/__init__.py) continue ;;
            plugins/modules/*) kind=module name=$(basename "$path" .py) ;;
            roles/*) kind=role name=$(basename "$path") ;;
        esac
        fqcn="fjcloud.mail.$name"
        count=$((count + 1))
        if out=$(ANSIBLE_COLLECTIONS_PATH="$collections_path" ansible-doc -t "$kind" "$fqcn" 2>&1) &&
            [[ -n ${out//[[:space:]]/} ]] && ! grep -q '^\[WARNING\]: .*not found' <<<"$out"; then
            notice "ok      ansible-doc -t $kind $fqcn ($(wc -l <<<"$out") lines)"
        else
            notice "FAILED  ansible-doc -t $kind $fqcn:"
            printf '%s\n' "$out" | sed 's/^/    /'
            failed=1
        fi
    done
    if ((count == 0)); then
        notice "no modules in plugins/modules/ and no roles in roles/"
    fi
    return "$failed"
}

run_lint() {
    cd "$ROOT"
    local scripts=()
    mapfile -t scripts < <(
        {
            find tools -maxdepth 2 -type f -name '*.sh'
            find .ci -maxdepth 1 -type f
        } 2>/dev/null | sort
    )
    local rc=0
    if ((${#scripts[@]})); then
        notice "shellcheck ${scripts[*]}"
        shellcheck "${scripts[@]}" || rc=1
    fi
    # offline (see .ansible-lint), ansible-lint does not install the
    # collection it lints: let it find fjcloud.mail.* through a link instead.
    local collections="$BUILD_ROOT/lint-collections"
    mkdir -p "$collections/ansible_collections/fjcloud"
    ln -sfn "$ROOT" "$collections/ansible_collections/fjcloud/mail"
    export ANSIBLE_COLLECTIONS_PATH="$collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections:/usr/share/ansible/collections}"
    notice "ansible-lint --profile production"
    ansible-lint --profile production || rc=1
    return "$rc"
}

run_pytest() {
    cd "$ROOT"
    local rc=0
    # Tests marked xdist_group('postfix') share the machine's Postfix: one worker runs them all.
    pytest -n auto --dist loadgroup "$@" || rc=$?
    if ((rc == 5)); then
        notice "pytest collected no tests: that counts as a failure"
    fi
    return "$rc"
}

run_molecule() {
    local scenarios=() file rc=0
    for file in "$ROOT"/extensions/molecule/*/molecule.yml; do
        [[ -e $file ]] && scenarios+=("$(basename "$(dirname "$file")")")
    done
    if ((${#scenarios[@]} == 0)); then
        notice "no molecule scenarios in extensions/molecule/: skipped"
        return 99
    fi
    cd "$ROOT/extensions"
    # Scenarios converge this machine's postfix: one at a time.
    for scenario in "${scenarios[@]}"; do
        banner "molecule test -s $scenario"
        molecule test -s "$scenario" || rc=1
    done
    return "$rc"
}

# ---------------------------------------------------------------------------
# main

usage() {
    notice "usage: $0 [all|sanity|units|functional|lint|molecule ...] | setup"
}

main() {
    local want_sanity=0 want_lint=0 want_units=0 want_functional=0 want_molecule=0 arg
    if (($# == 0)); then
        set -- all
    fi
    for arg in "$@"; do
        case $arg in
            all) want_sanity=1 want_lint=1 want_units=1 want_functional=1 want_molecule=1 ;;
            sanity) want_sanity=1 ;;
            lint) want_lint=1 ;;
            units | unit) want_units=1 ;;
            functional) want_functional=1 ;;
            molecule) want_molecule=1 ;;
            setup) ;;
            -h | --help)
                usage
                return 0
                ;;
            *)
                usage >&2
                return 2
                ;;
        esac
    done

    trap on_exit EXIT
    notice "fjcloud.mail tests in $ROOT: $*"

    setup_step "apt packages" install_apt_packages
    setup_step "python venv (${VENV##*/})" setup_venv
    if ((want_sanity)); then
        setup_step "ansible-test pip bootstrap" setup_get_pip
        setup_step "collection tree (.build)" setup_collection_tree
    fi

    if ((want_sanity)); then
        stage "ansible-test sanity" run_sanity
        stage "ansible-doc" run_docs
    fi
    if ((want_lint)); then
        stage "lint (ansible-lint, shellcheck)" run_lint
    fi
    local pytest_dirs=()
    if ((want_units)); then
        pytest_dirs+=(tests/unit)
    fi
    if ((want_functional)); then
        pytest_dirs+=(tests/functional)
    fi
    if ((${#pytest_dirs[@]})); then
        stage "pytest ${pytest_dirs[*]}" run_pytest "${pytest_dirs[@]}"
    fi
    if ((want_molecule)); then
        stage "molecule" run_molecule
    fi
    return "$OVERALL_RC"
}

main "$@"
