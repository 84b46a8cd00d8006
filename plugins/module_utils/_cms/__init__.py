# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CMS itself (private): its service (stop, start, health), its install (name, version, migrations), its
bootstrap and its cache."""
