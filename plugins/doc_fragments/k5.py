# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options shared by every module (module_utils/module.py k5_argument_spec).
    DOCUMENTATION = r'''
options:
  auth:
    description:
      - Keystone v3 password authentication, used to get a token when O(auth_token) is not given,
        and to get a new one once when the mail API rejects an expired token.
      - Each key falls back to the usual OpenStack environment variable, so credentials kept for
        the OpenStack tools work unchanged.
      - A rejected password is reported at once and never retried, because five failed logins
        within 15 minutes lock the K5 account for 15 minutes.
    type: dict
    suboptions:
      auth_url:
        description:
          - Keystone v3 URL. C(/v3) is appended when the URL does not end with it.
          - Must be C(https://) (see O(allow_http)) with a valid host name or IP address, and must not
            hold a user name or password. Redirects are never followed.
          - Defaults to C(https://identity.<region_name>.cloud.global.fujitsu.com/v3).
          - Falls back to E(OS_AUTH_URL).
        type: str
      username:
        description:
          - The K5 user name. Falls back to E(OS_USERNAME).
        type: str
      password:
        description:
          - The user's password. Falls back to E(OS_PASSWORD).
        type: str
      user_domain_name:
        description:
          - The user's domain, which on K5 is the contract number. Falls back to E(OS_USER_DOMAIN_NAME).
        type: str
      project_id:
        description:
          - ID of the project the token is scoped to. Falls back to E(OS_PROJECT_ID).
          - Either O(auth.project_id) or O(auth.project_name) is needed.
        type: str
      project_name:
        description:
          - Name of the project the token is scoped to, when O(auth.project_id) is not given.
            Falls back to E(OS_PROJECT_NAME).
        type: str
      project_domain_name:
        description:
          - Domain of O(auth.project_name). Defaults to O(auth.user_domain_name).
            Falls back to E(OS_PROJECT_DOMAIN_NAME).
        type: str
  auth_token:
    description:
      - A Keystone v3 token scoped to the project, got by an earlier task or by the OpenStack tools.
        Takes precedence over O(auth).
      - Falls back to E(OS_TOKEN), then E(OS_AUTH_TOKEN).
    type: str
  region_name:
    description:
      - The K5 region, used to build the default O(endpoint) and O(auth.auth_url).
      - Lower-case letters, digits and dashes, at most 63 characters.
      - Falls back to E(OS_REGION_NAME), then to C(jp-east-1).
    type: str
  endpoint:
    description:
      - URL of the mail API.
      - Must be C(https://) (see O(allow_http)) with a valid host name or IP address, and must not
        hold a user name or password. Redirects are never followed, a redirect is reported as an error.
      - Every module, M(fjcloud.mail.auth) and the C(fjcloud-mail-external) program pick the endpoint by
        one rule, first found wins - this option, then E(FJCLOUD_MAIL_ENDPOINT), then
        C(https://mail.<region_name>.cloud.global.fujitsu.com). The token's service catalog is not used,
        so a task with O(auth_token) and one with O(auth) reach the same URL; M(fjcloud.mail.auth) warns
        when the catalog names another one. Older contracts use C(https://mail.jp-east-1.tps5.fujitsu.com).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificates of the mail API and of Keystone.
      - V(false) lets anyone on the network path pose as the service and read the password, the token
        and the SMTP credentials; the module warns when it is set. Give O(ca_cert) for a private CA instead.
    type: bool
    default: true
  allow_http:
    description:
      - Accept plain C(http://) in O(endpoint) and O(auth.auth_url). Meant only for a local emulator,
        the password and the token then cross the network in clear text, and the module warns.
      - When V(false), an C(http://) URL is refused before any request.
    type: bool
    default: false
  ca_cert:
    description:
      - A CA bundle (PEM) that signs the servers' certificates, instead of the system's.
      - Falls back to E(OS_CACERT).
    type: path
    aliases: [cacert]
  api_timeout:
    description:
      - Seconds to wait for each HTTP reply, from 1 to 3600.
    type: int
    default: 30
  retries:
    description:
      - How many times a call is repeated, from 0 to 20, with exponential backoff and jitter.
      - A call that only reads, or whose repeat answers "already done", is repeated after a connection
        error, a timeout, a reply cut short, an HTTP 5xx or a throttling reply.
      - Sending a mail and logging in to Keystone are repeated only when the service cannot have acted,
        that is when the connection failed before the request was sent, or when the reply says it was
        not processed (throttling; for Keystone also HTTP 429 and 503). A rejected password is never repeated.
      - Other errors (4xx, redirects, TLS failures, replies larger than 4 MiB) are never repeated.
    type: int
    default: 5
requirements:
  - requests
  - lxml
notes:
  - The service accepts one request per second. Calls to one endpoint from every task on the
    same host are spaced one second apart (they queue on a lock file in the user's private state
    directory, C(~/.ansible/fjcloud.mail) or E(FJCLOUD_MAIL_STATE_DIR));
    a throttling reply caused by other clients is retried with backoff.
  - Authentication precedence is O(auth_token), then O(auth); every option falls back to its
    environment variable when it is not set in the task.
  - Logins cannot lock the account. Tasks of the same user on the same host log in to one account
    (auth URL, user name, contract) one at a time. After Keystone rejects a login, the same credentials
    (user, contract, project and password) are not tried again for 15 minutes, while corrected ones
    are tried at once; and at most 3 logins of an account fail within 15 minutes, whatever the
    passwords. A refused task fails at once without a request, saying why and until when, so a play
    on many hosts with a wrong password makes a single failed login.
  - When many hosts call the API, authenticate once per play with M(fjcloud.mail.auth) and
    C(run_once), and give its token to the other tasks with O(auth_token).
  - A host name of O(endpoint) or O(auth.auth_url) that does not resolve fails at once (a typo in
    O(region_name) or in the URL is the usual cause); a refused connection is repeated for a few seconds
    only. Every error names the URL, never with a user name or password, and says what to check.
    Error texts of the service are cut at 300 characters.
'''

    # Attributes shared by every module; each module states its support.
    ATTRIBUTES = r'''
attributes:
  action_group:
    description: Use C(group/fjcloud.mail.mail) in C(module_defaults) to set the connection options once for every module.
    support: full
    membership:
      - fjcloud.mail.mail
'''

    # Attributes of the modules that only read (*_info).
    INFO_MODULE = r'''
attributes:
  check_mode:
    description: The module only reads, in check mode as in a normal run.
    support: full
  diff_mode:
    description: The module changes nothing, so there is no diff.
    support: N/A
  idempotent:
    description: The module only reads.
    support: full
'''
