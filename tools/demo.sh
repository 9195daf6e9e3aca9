#!/usr/bin/env bash
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The main job, "make demo": on a Debian machine, as root,
#   1. installs what it needs (make venv: Debian packages, .venv with the newest ansible-core);
#   2. starts the emulator of the K5 Email Delivery Service (HTTPS API + SMTP relay);
#   3. runs examples/demo.yml: creates the SMTP user through the API and configures
#      this machine's Postfix to relay through the emulator with SMTP AUTH over TLS;
#   4. sends a mail through Postfix and shows how it arrived at the relay;
#   5. runs the playbook again and shows changed=0;
# then puts this machine's Postfix back as it found it: main.cf, sasl_passwd and its
# index are restored (the relay configuration points at the emulator and its CA in a
# temp dir, both gone after the demo), Postfix is reloaded, or stopped if it was not
# running before.
# FJCLOUD_DEMO_SKIP_SETUP=1 skips step 1 and uses the python3 and ansible first on PATH
# (the tests run the demo with their own venv).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
WORK=$(mktemp -d /tmp/fjcloud-mail-demo.XXXXXX)
STATE="$WORK/emulator"
EMULATOR_PID=''
POSTFIX_WAS_RUNNING=0
SAVED="$WORK/postfix-saved"
# What the demo changes in /etc/postfix (the reload marker, too, in case a run stops).
POSTFIX_FILES=(main.cf sasl_passwd sasl_passwd.db sasl_passwd.lmdb .postfix_relay-reload-pending)

banner() {
    printf '\n======== %s ========\n' "$*"
}

save_postfix() {
    local name
    mkdir -m 0700 "$SAVED"
    for name in "${POSTFIX_FILES[@]}"; do
        if [[ -e /etc/postfix/$name ]]; then
            cp -p "/etc/postfix/$name" "$SAVED/$name"
        fi
    done
    touch "$SAVED/.complete"
}

restore_postfix() {
    local name
    [[ -e $SAVED/.complete ]] || return 0
    for name in "${POSTFIX_FILES[@]}"; do
        if [[ -e $SAVED/$name ]]; then
            # cp -p onto the existing file keeps a secret's narrow mode throughout.
            cp -p "$SAVED/$name" "/etc/postfix/$name"
        else
            rm -f "/etc/postfix/$name"
        fi
    done
    echo "restored /etc/postfix (${POSTFIX_FILES[*]}) as the demo found it"
}

cleanup() {
    local rc=$?
    if [[ -n $EMULATOR_PID ]] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    restore_postfix || rc=1
    if ((!POSTFIX_WAS_RUNNING)) && postfix status >/dev/null 2>&1; then
        postfix stop >/dev/null 2>&1 || true
    elif ((POSTFIX_WAS_RUNNING)) && postfix status >/dev/null 2>&1; then
        postfix reload >/dev/null 2>&1 || true
    fi
    if ((rc != 0)); then
        printf '\nDEMO FAILED (exit code %d). Emulator log: %s/emulator.log\n' "$rc" "$STATE"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT

banner "1. install (make venv)"
if [[ ${FJCLOUD_DEMO_SKIP_SETUP:-} == 1 ]]; then
    echo "skipped (FJCLOUD_DEMO_SKIP_SETUP=1)"
    VENV_BIN=$(dirname "$(command -v python3)")
else
    make -C "$ROOT" venv
    VENV_BIN="$ROOT/.venv/bin"
fi
export PATH="$VENV_BIN:$PATH"
if postfix status >/dev/null 2>&1; then
    POSTFIX_WAS_RUNNING=1
fi
save_postfix

# The collection is found through ansible_collections/fjcloud/mail.
ANSIBLE_COLLECTIONS_PATH=$("$VENV_BIN/python3" "$ROOT/tools/collection_tree.py" link "$WORK/collections")
export ANSIBLE_COLLECTIONS_PATH
export ANSIBLE_LOCAL_TEMP="$WORK/ansible-local" ANSIBLE_REMOTE_TMP="$WORK/ansible-remote"
export ANSIBLE_PYTHON_INTERPRETER="$VENV_BIN/python3"
export ANSIBLE_NOCOLOR=1

banner "2. start the emulator"
mkdir -m 0700 "$STATE"   # the emulator refuses a state directory that others may enter
(umask 077 && PYTHONPATH="$ROOT/src" exec python -m k5emu --state-dir "$STATE" >"$STATE/emulator.log" 2>&1) &
EMULATOR_PID=$!
for _try in $(seq 1 100); do
    [[ -s $STATE/endpoint.json ]] && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || {
        cat "$STATE/emulator.log"
        exit 1
    }
    sleep 0.1
done
[[ -s $STATE/endpoint.json ]] || {
    echo "the emulator did not start in 10 s"
    exit 1
}
# endpoint.json without its admin_secret, which stays in the 0600 file
python -c 'import json, sys; e = json.load(open(sys.argv[1])); e.pop("admin_secret", None); print(json.dumps(e, indent=2, sort_keys=True))' \
    "$STATE/endpoint.json"
echo

# Extra vars for the playbook, from the emulator's endpoint.json.
python - "$STATE/endpoint.json" >"$WORK/vars.json" <<'EOF'
import json
import sys

endpoint = json.load(open(sys.argv[1], encoding='utf-8'))
print(json.dumps({
    'k5_endpoint': endpoint['url'],
    'k5_auth_url': endpoint['auth_url'],
    'k5_ca_cert': endpoint['ca_cert'],
    'relay_host': 'localhost',
    'relay_port': endpoint['smtp']['port'],
}))
EOF

banner "3. ansible-playbook examples/demo.yml (first run)"
ansible-playbook -i localhost, -c local "$ROOT/examples/demo.yml" -e "@$WORK/vars.json" | tee "$WORK/run1.log"

banner "4. send a mail through Postfix"
SUBJECT="fjcloud.mail demo $(date -u +%Y%m%dT%H%M%SZ)-$$"
printf 'From: demo@example.com\nTo: someone@example.net\nSubject: %s\n\nRelayed by Postfix through the K5 Email Delivery Service emulator.\n' \
    "$SUBJECT" | /usr/sbin/sendmail -f demo@example.com someone@example.net
echo "sent: $SUBJECT"
PYTHONPATH="$ROOT/src" python - "$STATE" "$SUBJECT" <<'EOF'
import json
import os
import sys
import time

import requests

state_dir, subject = sys.argv[1], sys.argv[2]
endpoint = json.load(open(os.path.join(state_dir, 'endpoint.json'), encoding='utf-8'))
issued = json.load(open(os.path.join(state_dir, 'state.json'), encoding='utf-8'))
deadline = time.monotonic() + 60
while True:
    messages = requests.get(endpoint['url'] + '/_emulator/messages', headers={'X-K5emu-Admin-Secret': endpoint['admin_secret']},
                            verify=endpoint['ca_cert'], timeout=10).json()
    found = [m for m in messages if m.get('subject') == subject]
    if found or time.monotonic() > deadline:
        break
    time.sleep(0.5)
if not found:
    sys.exit('the mail did not reach the emulator within 60 s; see /var/log/postfix.log and postqueue -p')
message = found[0]
users = [c['smtp_user']['user'] for c in issued['contracts'].values() if c.get('smtp_user')]
print('The emulator received the mail:')
print('  subject            %s' % message['subject'])
print('  envelope           %s -> %s' % (message['mail_from'], ', '.join(message['rcpt_tos'])))
print('  TLS                %s %s' % (message['tls']['version'], message['tls']['cipher']))
print('  authenticated user %s (the issued SMTP user: %s)' % (message['auth_user'], 'yes' if message['auth_user'] in users else 'NO'))
if message['auth_user'] not in users:
    sys.exit(1)
with open(os.path.join(state_dir, 'relayed.txt'), 'w', encoding='utf-8') as summary:
    summary.write('authenticated as %s over %s' % (message['auth_user'], message['tls']['version']))
EOF

banner "5. ansible-playbook examples/demo.yml (second run: nothing to change)"
ansible-playbook -i localhost, -c local "$ROOT/examples/demo.yml" -e "@$WORK/vars.json" | tee "$WORK/run2.log"
recap=$(grep -E '^localhost +:' "$WORK/run2.log")
echo
echo "second run: $recap"
if [[ $recap != *"changed=0"* || $recap != *"failed=0"* ]]; then
    echo "the second run changed something: not idempotent"
    exit 1
fi
banner "Result"
echo "relayed mail: $(cat "$STATE/relayed.txt")"
echo "second run:   changed=0"
