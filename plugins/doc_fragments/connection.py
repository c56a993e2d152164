# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by every plugin kind of the collection.

    ``DOCUMENTATION`` is for everyone (modules included). ``PLUGINS`` adds the ``vars`` and ``ini`` entries for
    the plugin kinds whose options Ansible's config system resolves (lookup, connection, inventory); module
    documentation may not carry them, so the actions in front of the modules register both fragments with
    ansible-core at run time (plugins/plugin_utils/_options.py) instead of repeating them.

    The ``NOMAD_*`` variables are deliberately NOT declared as ``env:`` entries: Ansible ranks ``env:`` above
    ``ini:``, but the documented precedence puts Nomad's own variables below ansible.cfg. They are read by the
    ``fallback`` entries of the one argument spec (module_utils/common/options.py), for every runtime alike, and are
    documented in the option descriptions.
    """

    DOCUMENTATION = r"""
options:
  address:
    description:
      - Base URL of the Nomad HTTP API, V(http://host:port) or V(https://host:port), optionally with a path prefix.
      - User information in the URL (V(https://user:pass@host:4646)) is used for HTTP basic authentication and wins over O(http_auth).
      - If not set, the E(NOMAD_ADDR) environment variable is used.
    type: str
    default: http://127.0.0.1:4646
  token:
    description:
      - ACL token (secret ID), sent in the C(X-Nomad-Token) header. Never logged or returned.
      - If not set, the E(NOMAD_TOKEN) environment variable is used. Without a token Nomad applies its anonymous policy.
    type: str
  namespace:
    description:
      - Nomad namespace of the request.
      - V(*) lists allocations in every namespace the token may read (only for listing and ID resolution).
      - If not set, the E(NOMAD_NAMESPACE) environment variable is used.
    type: str
    default: default
  region:
    description:
      - Nomad region to send the request to. Nomad forwards requests for other regions; unknown regions fail.
      - If not set, the E(NOMAD_REGION) environment variable is used, else the agent's own region.
    type: str
  ca_cert:
    description:
      - PEM file with the CA certificate(s) that signed the Nomad server certificate.
      - Wins over O(ca_path). If neither is set, the system trust store is used;
        E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) are never consulted.
      - If not set, the E(NOMAD_CACERT) environment variable is used.
    type: path
  ca_path:
    description:
      - Directory of PEM files with CA certificates (every regular file in it is loaded; no C(c_rehash) needed).
      - If not set, the E(NOMAD_CAPATH) environment variable is used.
    type: path
  client_cert:
    description:
      - PEM client certificate for mutual TLS. It may also contain the key.
      - If not set, the E(NOMAD_CLIENT_CERT) environment variable is used.
    type: path
  client_key:
    description:
      - PEM private key for O(client_cert).
      - If not set, the E(NOMAD_CLIENT_KEY) environment variable is used.
    type: path
  tls_server_name:
    description:
      - Host name sent as TLS SNI and verified against the server certificate instead of the host of O(address).
      - If not set, the E(NOMAD_TLS_SERVER_NAME) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the server certificate. Only set to V(false) on trusted networks.
      - If not set, the E(NOMAD_SKIP_VERIFY) environment variable is used, inverted and parsed like Go's C(strconv.ParseBool)
        (V(1), V(t), V(true) and so on skip verification); values that do not parse are ignored, as Nomad does.
    type: bool
    default: true
  http_auth:
    description:
      - HTTP basic authentication as V(user:password) or V(user), for a proxy in front of Nomad. Never logged.
      - If not set, the E(NOMAD_HTTP_AUTH) environment variable is used.
    type: str
  timeout:
    description:
      - Seconds to wait for a connection and for each answer of one HTTP request. Blocking queries (waits) add their
        wait time to it.
      - It never limits how long a whole task may take; the deadline of a command run by
        M(nomadops.nomad.nomad_alloc_exec) is its own option C(command_timeout).
    type: float
    default: 30
  retries:
    description:
      - How many times a read (C(GET)) is retried after a connection error, a broken answer, or status 429, 500, 502, 503 or 504,
        with exponential backoff and respecting C(Retry-After) (waiting at most 30 seconds per attempt).
      - Changes (C(POST)/C(PUT)) are only retried when the connection could not be established, so they are never sent twice.
    type: int
    default: 3
notes:
  - >-
    Connection option precedence, the same for every module, action, lookup, connection and inventory plugin of the
    collection, highest first: task arguments (lookup keyword arguments, inventory file options), then
    C(module_defaults) (for example for C(group/nomadops.nomad.nomad)), then the Ansible variables
    C(ansible_nomad_<option>) (templated; for example C(ansible_nomad_address), C(ansible_nomad_token)), then the
    C([nomadops_nomad]) section of C(ansible.cfg) (every option except O(token) and O(http_auth)), then the
    C(NOMAD_*) environment variables Nomad's CLI reads, then the defaults.
  - >-
    Modules take part through an action plugin of the same name that runs on the controller: it adds the
    C(ansible_nomad_<option>) variables and C(ansible.cfg) entries for the options the task does not set, then
    runs the module as usual. The C(NOMAD_*) variables are read by the module, from the environment of the host
    it runs on (usually the controller, through C(delegate_to) or C(localhost)); the task keyword C(environment)
    sets them for a module.
requirements:
  - requests (Python library, on the host that talks to Nomad)
"""

    PLUGINS = r"""
options:
  address:
    vars:
      - name: ansible_nomad_address
    ini:
      - section: nomadops_nomad
        key: address
  token:
    vars:
      - name: ansible_nomad_token
  namespace:
    vars:
      - name: ansible_nomad_namespace
    ini:
      - section: nomadops_nomad
        key: namespace
  region:
    vars:
      - name: ansible_nomad_region
    ini:
      - section: nomadops_nomad
        key: region
  ca_cert:
    vars:
      - name: ansible_nomad_ca_cert
    ini:
      - section: nomadops_nomad
        key: ca_cert
  ca_path:
    vars:
      - name: ansible_nomad_ca_path
    ini:
      - section: nomadops_nomad
        key: ca_path
  client_cert:
    vars:
      - name: ansible_nomad_client_cert
    ini:
      - section: nomadops_nomad
        key: client_cert
  client_key:
    vars:
      - name: ansible_nomad_client_key
    ini:
      - section: nomadops_nomad
        key: client_key
  tls_server_name:
    vars:
      - name: ansible_nomad_tls_server_name
    ini:
      - section: nomadops_nomad
        key: tls_server_name
  validate_certs:
    vars:
      - name: ansible_nomad_validate_certs
    ini:
      - section: nomadops_nomad
        key: validate_certs
  http_auth:
    vars:
      - name: ansible_nomad_http_auth
  timeout:
    vars:
      - name: ansible_nomad_timeout
    ini:
      - section: nomadops_nomad
        key: timeout
  retries:
    vars:
      - name: ansible_nomad_retries
    ini:
      - section: nomadops_nomad
        key: retries
"""
