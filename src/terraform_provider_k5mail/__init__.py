# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""terraform-provider-k5mail: the Terraform provider ``fjcloud/k5mail`` for the K5 Email Delivery Service.

Built on the PyPI package ``tf`` (plugin protocol 6) and on the collection's own
client (``ansible_collections.fjcloud.mail.plugins.module_utils``). Terraform
starts it from a filesystem mirror that ``terraform-provider-k5mail mirror DIR``
writes; see :mod:`terraform_provider_k5mail.program`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The release of fjcloud-mail it ships with (galaxy.yml; test_packaging.py checks that they agree).
__version__ = '1.0.0'
