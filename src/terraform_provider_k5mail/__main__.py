# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m terraform_provider_k5mail``: the same as the ``terraform-provider-k5mail`` console script."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

from terraform_provider_k5mail.program import main

if __name__ == '__main__':
    sys.exit(main())
