# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m fjcloud_mail_external``: the same as the ``fjcloud-mail-external`` console script."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

from fjcloud_mail_external.program import main

if __name__ == '__main__':
    sys.exit(main())
