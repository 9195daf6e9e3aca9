#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postfix_relay_config
short_description: Configure Postfix on the managed host to relay through one SMTP relay with SMTP AUTH over TLS
version_added: 1.0.0
description:
  - Does the host side of the P(fjcloud.mail.postfix_relay#role) role in one execution, with the
    Python standard library only -- the relay's credentials line in C(sasl_passwd), its index, and the
    keys of C(main.cf) that make Postfix relay through O(relay_host) with SMTP AUTH over TLS.
  - Every option, the map type, the CA file (PEM), the O(main_cf_extra) keys (known to Postfix) and the TLS
    level that Postfix would use for the relay (policy tables, C(master.cf) overrides) are checked before anything
    changes, also with O(probe=true). One error message lists every problem found, each naming its option
    (as O(option_names) calls it); none shows the password.
  - The options alone are checked on the controller first, by the module's action plugin, before the host is
    contacted; with O(validate_only=true) that is all the task does.
  - The relay's line in C(sasl_passwd) is the line after the comment
    C(# managed by fjcloud.mail.postfix_relay). When the relay's host or port changes, that line is
    replaced; a line without the comment whose key is the relay's C([host]:port) (a line written by hand
    or by another tool) is taken over. A line whose key is the relay's in other letter case (C([SMTP.Example.COM]:587))
    is removed and reported in RV(sasl_passwd_removed), since Postfix's lookups fold case and the first line
    would win over the relay's. Other lines stay as they are; lines are split at newlines only, and continuation
    lines (starting with whitespace) go with their line.
  - C(sasl_passwd) and its index are built under temporary names in the same directory (C(.sasl_passwd.XXXXXXXX),
    root's, mode 0600 from creation, C(postmap) under umask 077), the new index is checked to answer the relay's
    key, and then both are moved into place. So neither is ever readable by anyone but root, and a C(postmap)
    that is killed or fails (a full disk) leaves the previous index in place, never a broken one.
  - Every run checks that the index answers the relay's key with the wanted credentials (one C(postmap -q)); a
    missing, older, empty, broken or outdated index is rebuilt and reported as a change (RV(index_rebuilt)).
  - Temporary files that a killed run left in O(config_dir) (root's C(.sasl_passwd.*) files older than 10 seconds
    that no running instance of the module holds locked) are removed, and reported in RV(stale_files_removed).
  - In C(main.cf) only the keys that differ are set (C(postconf -e)); keys that must go are removed
    (C(postconf -X)), that is C(smtp_tls_CAfile) when there is no CA file, and the keys of O(main_cf_extra)
    whose value is null. The rest of C(main.cf) stays as it is.
  - Postfix is not reloaded; RV(reload_needed) tells whether it must be. With O(pending_marker), a reload that is due
    is also remembered in that file until the caller removes it, and RV(running) tells whether the instance runs,
    so that a caller learns everything it must do about the service from this one execution.
  - With O(probe=true) it only checks the host and reports the packages it lacks, without credentials.
  - A missing C(/etc/postfix/main.cf) (Debian's C(No configuration) choice) is created from Debian's template.
author:
  - fjcloud.mail developers (@fjcloud)
attributes:
  check_mode:
    description: Reads only; the result says what would change.
    support: full
  diff_mode:
    description: Shows the C(main.cf) keys before and after, and the keys of the C(sasl_passwd) lines; values,
      comments and continuation lines are replaced by C(********).
    support: full
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
options:
  config_dir:
    description:
      - The configuration directory of the Postfix instance (C(postconf -c)). It must hold a C(main.cf).
        C(sasl_passwd) is kept there.
    type: path
    default: /etc/postfix
  relay_host:
    description:
      - Host name or IP address of the relay, without brackets or port. C(relayhost) and the key of the
        C(sasl_passwd) line are C([relay_host]:relay_port) (C([ipv6:ADDRESS]:port) for an IPv6 address).
    type: str
    required: true
  relay_port:
    description:
      - TCP port of the relay.
    type: int
    default: 587
  smtp_user:
    description:
      - SMTP AUTH user name. Must not be empty, contain whitespace or C(:), or start with C(#).
      - Without O(smtp_user) and O(smtp_password), C(sasl_passwd) is left unchecked and only C(main.cf) is managed.
        Set both or neither.
    type: str
  smtp_password:
    description:
      - SMTP AUTH password, with O(smtp_user). Must not be empty, contain whitespace or start with C(#).
    type: str
  map_type:
    description:
      - Map type of C(sasl_passwd). Postfix must support it (C(postconf -m)).
      - Omitted, the instance's C(default_database_type) is used.
    type: str
    choices: [hash, btree, lmdb, cdb]
  tls_wrappermode:
    description:
      - V(true) speaks TLS from the first byte (SMTPS, C(smtp_tls_wrappermode = yes)), V(false) uses STARTTLS.
      - Omitted, V(true) when O(relay_port) is 465 and V(false) otherwise. V(false) with port 465 is refused.
    type: bool
  tls_verify:
    description:
      - V(true) sets C(smtp_tls_security_level = secure) -- Postfix sends the password only to a relay whose certificate
        is signed by a CA of O(tls_ca_file) and names O(relay_host).
      - V(false) sets C(smtp_tls_security_level = encrypt) -- the connection is encrypted, but anyone who intercepts it
        can present any certificate and receives the SMTP password. The module warns on every run, also with O(probe=true)
        and O(validate_only=true); the warning is given on the controller, so that the task's C(no_log) does not hide it.
      - Before anything changes, the module checks that nothing lowers this level for the relay -- an entry for
        C([relay_host]:relay_port) in C(smtp_tls_policy_maps) (each table queried with C(postmap -q)), or a
        C(-o smtp_tls_security_level) of the C(master.cf) services of C(default_transport) and C(relay_transport)
        (C(postconf -P)). A level below C(secure) (V(true); C(verify), C(fingerprint) and C(dane-only) also verify)
        or below C(encrypt) (V(false)) is an error naming the table entry or service. A table that cannot be queried is an error too.
    type: bool
    default: true
  tls_ca_file:
    description:
      - PEM file on the managed host with the CAs that sign the relay's certificate (C(smtp_tls_CAfile)).
        It must hold at least one C(-----BEGIN CERTIFICATE-----) block, and OpenSSL must be able to load it;
        else the module fails before anything changes. The system CA bundle used by default is checked the same way.
      - Omitted with O(tls_verify=true), the first system CA bundle found is used
        (C(/etc/ssl/certs/ca-certificates.crt), C(/etc/pki/tls/certs/ca-bundle.crt), C(/etc/ssl/ca-bundle.pem),
        C(/etc/ssl/cert.pem)).
      - Omitted with O(tls_verify=false), C(smtp_tls_CAfile) is removed from C(main.cf).
    type: path
  sasl_security_options:
    description:
      - C(smtp_sasl_security_options); one line of option names separated by commas or spaces.
    type: str
    default: noanonymous
  sasl_tls_security_options:
    description:
      - C(smtp_sasl_tls_security_options), the same for TLS sessions.
    type: str
    default: noanonymous
  main_cf_extra:
    description:
      - More C(main.cf) parameters. A string value is set when it differs; a null value removes the key
        (C(postconf -X)). Values are one line. The keys this module sets from its other options are refused.
      - Every key with a value must be a parameter that Postfix knows once the keys are set (C(postconf -c DIR -o KEY=VALUE KEY)
        prints it) -- a built-in one (C(postconf -d) lists them), one of a C(master.cf) service (such as
        C(relay_destination_concurrency_limit)), or one of your own that another parameter or C(master.cf) uses (C($name)).
        An unknown key is an error before anything changes; Postfix would ignore it, and it would be set again on every run.
        A null value removes any key, also an unknown one.
    type: dict
    default: {}
  probe:
    description:
      - V(true) checks the options, C(main.cf), the map type and the CA file, and reports RV(missing_packages);
        it changes nothing (except creating a missing Debian C(/etc/postfix/main.cf)) and needs no credentials.
    type: bool
    default: false
  validate_only:
    description:
      - V(true) checks the options on the controller only (their shapes, every problem in one message) and gives the
        O(tls_verify=false) warning; the host is not contacted and nothing changes. A caller can so check every host's
        options before it calls the service's API.
    type: bool
    default: false
  check_packages:
    description:
      - Report in RV(missing_packages) which of O(packages) are not installed, plus C(postfix-lmdb) when O(map_type)
        is C(lmdb) and Postfix lacks it.
      - When one is missing the module stops there and changes nothing, since Postfix may not be installed yet.
        Install them, then run the module again.
    type: bool
    default: false
  packages:
    description:
      - The packages Postfix needs here. Omitted, those of the host's package manager
        (dpkg C(postfix), C(libsasl2-modules); rpm C(postfix), C(cyrus-sasl-plain)).
    type: list
    elements: str
  pending_marker:
    description:
      - A file that remembers a reload of Postfix that is due. When this run changes the configuration, the file is
        created (empty, root's, mode 0600) before the first change; the caller removes it once it has reloaded Postfix.
        So a run that stops before the reload (a failed C(postfix check), a lost connection) leaves it, and the next run
        reports RV(reload_pending) although nothing changes then.
      - Set, the module also reports RV(running) (C(postfix status)).
    type: path
  option_names:
    description:
      - How error messages and warnings name the options, for a caller that knows them by other names;
        the P(fjcloud.mail.postfix_relay#role) role passes its variables (C(relay_host) is C(postfix_relay_host), ...).
      - Options not in it are named as here.
    type: dict
    default: {}
notes:
  - Put C(no_log) on the task, since it receives the password. The module's messages and results never hold it.
seealso:
  - module: fjcloud.mail.smtp_user
  - name: Postfix SASL README
    description: SMTP AUTH in the Postfix SMTP client.
    link: https://www.postfix.org/SASL_README.html#client_sasl
'''

EXAMPLES = r'''
- name: Relay through the service with verified TLS (system CA bundle)
  fjcloud.mail.postfix_relay_config:
    relay_host: smtp.example.com
    smtp_user: "{{ vault_smtp_user }}"
    smtp_password: "{{ vault_smtp_password }}"
  register: relay
  no_log: true

- name: Reload Postfix when needed
  ansible.builtin.command: postfix reload
  changed_when: true
  when: relay.reload_needed

- name: Port 465, a private CA, and an extra key removed again
  fjcloud.mail.postfix_relay_config:
    relay_host: smtp.example.com
    relay_port: 465
    tls_wrappermode: true
    tls_ca_file: /etc/ssl/private-ca.pem
    smtp_user: "{{ vault_smtp_user }}"
    smtp_password: "{{ vault_smtp_password }}"
    main_cf_extra:
      smtp_host_lookup: native
      smtp_tls_loglevel: null
  no_log: true
'''

RETURN = r'''
nexthop:
  description: The text of C(relayhost) and of the key of the relay's C(sasl_passwd) line.
  returned: always
  type: str
  sample: "[smtp.example.com]:587"
map_type:
  description: The map type of C(sasl_passwd).
  returned: always
  type: str
  sample: hash
main_cf_set:
  description: The C(main.cf) keys set (or that would be set), with their new values.
  returned: always
  type: dict
  sample: {relayhost: "[smtp.example.com]:587"}
main_cf_removed:
  description: The C(main.cf) keys removed (or that would be removed).
  returned: always
  type: list
  elements: str
  sample: [smtp_tls_CAfile]
sasl_passwd_changed:
  description: Whether the relay's line in C(sasl_passwd) or the file's owner or mode changed (or would).
  returned: always
  type: bool
  sample: true
sasl_passwd_removed:
  description:
    - The keys of the lines the module removed from C(sasl_passwd) (or would remove) -- lines it had written for an
      earlier relay, and lines whose key is the relay's in other letter case, which would shadow the relay's line.
  returned: always
  type: list
  elements: str
  sample: ["[old-relay.example.com]:587"]
index_rebuilt:
  description:
    - Whether the index of C(sasl_passwd) was (or would be) rebuilt with C(postmap), because C(sasl_passwd) changed
      or the index did not answer the relay's key with the wanted credentials (missing, older than C(sasl_passwd),
      broken by a killed C(postmap), or outdated).
  returned: always
  type: bool
  sample: true
stale_files_removed:
  description: The names of the temporary files of an earlier, killed run removed (or that would be removed) from O(config_dir).
  returned: always
  type: list
  elements: str
  sample: [.sasl_passwd.k3j9x0qa, .sasl_passwd.k3j9x0qa.db]
reload_needed:
  description: Whether Postfix must be reloaded for the changes to take effect.
  returned: always
  type: bool
  sample: true
reload_pending:
  description: Whether Postfix must be reloaded -- this run changed its configuration, or O(pending_marker) exists.
  returned: with O(pending_marker)
  type: bool
  sample: false
running:
  description: Whether the instance runs (C(postfix status)).
  returned: with O(pending_marker)
  type: bool
  sample: true
missing_packages:
  description:
    - The packages that are not installed (with O(check_packages)); empty otherwise. When not empty, nothing
      was checked or changed beyond that.
  returned: always
  type: list
  elements: str
  sample: [postfix-lmdb]
package_manager:
  description: C(apt) on hosts with dpkg, C(dnf) with rpm, else empty.
  returned: always
  type: str
  sample: apt
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_host import DEBIAN_MAIN_CF, PostfixHost
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import (
    ARGUMENT_SPEC, OptionNames, PostfixRelayError, problems_text, validate,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_plan import (
    apply_plan, check_packages, create_main_cf, plan_relay, preflight, remember_reload, service_state,
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    name = OptionNames(params['option_names'])
    host = PostfixHost(params['config_dir'], module.run_command, module.get_bin_path)
    try:
        problems = validate(params, name)
        if problems:
            raise PostfixRelayError(problems_text(problems))
        if params['validate_only']:
            module.exit_json(changed=False, msg='The options are valid.')  # the action plugin stops before
        found = check_packages(host, params)
        if found.missing_packages:
            module.exit_json(**found.result())  # Postfix may not be installed yet: nothing is configured
        if host.debian_main_cf_missing():
            found.created_main_cf = True  # in check mode: would be
            if module.check_mode:
                module.exit_json(msg='%s would be created from %s.' % (host.main_cf, DEBIAN_MAIN_CF), **found.result())
            create_main_cf(host)  # the one write before the plan: postconf needs a main.cf
        preflight(host, params, name, found)
        if params['probe'] or found.missing_packages:  # postfix-lmdb
            module.exit_json(**found.result())
        plan = plan_relay(host, params, found)
        marker = params['pending_marker']
        if plan.changed and not module.check_mode:
            if marker and plan.reload_needed:
                remember_reload(marker)  # first: a run that dies while applying still leaves the reload to do
            apply_plan(host, plan)
        result = plan.result(diff=module._diff)
        if marker:
            result.update(service_state(host, marker, plan.reload_needed))
        module.exit_json(**result)
    except PostfixRelayError as error:
        module.fail_json(msg=str(error))
    except (IOError, OSError) as error:
        module.fail_json(msg='Postfix in %s cannot be configured: %s' % (host.config_dir, error))


if __name__ == '__main__':
    main()
