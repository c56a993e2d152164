# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pure parts the inventory plugins share: the cache identity of the credentials and safe host names."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import connection_options_from_params
from ansible_collections.nomadops.nomad.plugins.plugin_utils._inventory_base import credentials_identity, name_part

SALT = b"test salt\0"


def test_the_cache_identity_depends_on_the_token_and_never_holds_it():
    broad = connection_options_from_params({"token": "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01"})
    narrow = connection_options_from_params({"token": "0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c"})
    password = connection_options_from_params({"http_auth": "ops:pw"})
    identities = {credentials_identity(options, SALT) for options in (broad, narrow, password)}
    assert len(identities) == 3
    assert credentials_identity(broad, SALT) == credentials_identity(
        connection_options_from_params({"token": "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01"}), SALT)
    assert credentials_identity(broad, SALT) != credentials_identity(broad, b"another plugin\0")
    assert not any("3c9c5b8e" in identity or "pw" in identity for identity in identities)


def test_name_part_keeps_host_patterns_safe():
    assert name_part("web.frontend[0]") == "web.frontend_0_"
    assert name_part("rack:1,a b") == "rack_1_a_b"
    assert name_part("node-1.dc1_x") == "node-1.dc1_x"
