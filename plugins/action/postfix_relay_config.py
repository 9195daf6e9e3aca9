# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of fjcloud.mail.postfix_relay_config: the options are checked on the controller first.

A bad option fails here, with the module's own messages (postfix_options.validate), without a
round trip to the host; ``validate_only: true`` stops there, so that a role can check every host's
options before it calls the service's API. The TLS opt-out warning is given here, on the
controller: a task's no_log (it receives the password) hid a module's warnings before
ansible-core 2.19, not the controller's display.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import (
    ARGUMENT_SPEC, OptionNames, nexthop_of, problems_text, tls_opt_out_warning, validate,
)

MODULE = 'fjcloud.mail.postfix_relay_config'
display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused
        # A null option is one left out (the role passes null for the options it leaves to the module's rules).
        args = dict((key, value) for key, value in self._task.args.items() if value is not None)
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(args)
        if checked.error_messages:
            result.update(failed=True, msg='%s: %s' % (MODULE, problems_text(checked.error_messages)))
            return result
        params = checked.validated_parameters
        name = OptionNames(params['option_names'])
        problems = validate(params, name)
        if problems:
            result.update(failed=True, msg=problems_text(problems))
            return result
        if not params['tls_verify']:
            display.warning(tls_opt_out_warning(params, name, nexthop_of(params['relay_host'], params['relay_port'])))
        if params['validate_only']:
            result.update(changed=False, msg='The options are valid.')
            return result
        result = merge_hash(result, self._execute_module(module_name=MODULE, module_args=args,
                                                         task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
