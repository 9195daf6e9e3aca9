# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fjcloud-mail-external: a Terraform ``external`` data source for the K5 Email Delivery Service.

Read-only: it reads the SMTP user, an identity's verification status or the
send quota with the collection's own client
(``ansible_collections.fjcloud.mail.plugins.module_utils``). See
:mod:`fjcloud_mail_external.program`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The release of fjcloud-mail it ships with (galaxy.yml; test_packaging.py checks that they agree).
__version__ = '1.0.0'
