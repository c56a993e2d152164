# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Sphinx configuration for the nomadops.nomad docsite (`make docs`; first written by antsibull-docs sphinx-init)."""

from __future__ import annotations

import os

project = 'nomadops.nomad'
copyright = 'nomadops.nomad developers'  # pylint: disable=redefined-builtin

title = 'nomadops.nomad collection'
html_short_title = 'nomadops.nomad'

extensions = ['sphinx.ext.intersphinx', 'sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

# `make docs` must work offline, so links into docs.ansible.com and docs.python.org are resolved only
# when DOCS_INTERSPHINX=1 is set (it downloads the inventories).
if os.environ.get('DOCS_INTERSPHINX') == '1':
    intersphinx_mapping = {
        'python3': ('https://docs.python.org/3/', None),
        'jinja2': ('https://jinja.palletsprojects.com/', None),
        'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', None),
    }
else:
    intersphinx_mapping = {}
    # Without the inventories, references into docs.ansible.com (common_return_values, ...) cannot
    # resolve; references between this collection's own plugins are checked by `make docs-lint`.
    suppress_warnings = ['ref.ref']

default_role = 'any'
