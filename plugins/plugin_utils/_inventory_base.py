# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the collection's inventory plugins (nomad_allocs, nomad_nodes) share: the option model of an inventory
source file (unknown options and non-booleans refused, the one error boundary naming the file), the cache of
the records read from Nomad (keyed by a salted hash of the credentials, never the credentials), host names safe
in host patterns, the non-secret connection options hosts carry, and adding hosts with the constructed options.

A plugin subclasses :class:`NomadInventoryBase` and supplies what differs: how it selects (``allocations/selection.py``),
reads (``_fetch_records``) and describes an empty selection (``_described``), and how records become hosts
(``_populate``, calling ``_add_host``). Data read from Nomad is untrusted: inventory plugins in ansible-core are
not ``trusted_by_default``, so host variables set here are never templated. Private to the collection.
"""

from __future__ import annotations

import hashlib
import re
import typing as t

from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import unknown_names
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line
from ansible_collections.nomadops.nomad.plugins.plugin_utils._errors import nomad_errors_as
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import (
    explicit_option_values,
    plugin_connection_options,
)

_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]")
# TLS file paths a host carries only when the source file (or ini, extra vars) set them, see connection_host_vars.
PATH_OPTIONS = ("ca_cert", "ca_path", "client_cert", "client_key")


def name_part(text: str) -> str:
    """Text made safe in a host pattern: everything but letters, digits, `_`, `.` and `-` becomes `_`."""
    return _UNSAFE_IN_NAME.sub("_", str(text))


def ansible_error_line(error: BaseException) -> str:
    """An Ansible error's message (without the source excerpt str() adds) on one line."""
    return one_line(getattr(error, "message", None) or error)


def credentials_identity(options, salt: bytes) -> str:
    """A SHA-256 of the token and http_auth the listing is read with: which hosts a cache entry holds depends on
    what the token may read.  PBKDF2 keeps a weak http_auth password from being guessed from the cache file."""
    secret = "\0".join((options.token or "", ":".join(options.http_auth or ()))).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", secret, salt, 10000).hex()


def connection_host_vars(options, configured: t.Container) -> dict:
    """The non-secret connection options every host carries, so that plugins and modules run for the host talk
    to the same agent.

    TLS file paths only when the source configured them: paths from NOMAD_CACERT & co. are left to the
    environment of the play (AWX writes those files per run, so a stored path would not exist for the job).
    """
    host_vars = {"ansible_nomad_address": options.address}
    for name in ("region", "tls_server_name") + PATH_OPTIONS:
        value = getattr(options, name)
        if value and (name not in PATH_OPTIONS or name in configured):
            host_vars[f"ansible_nomad_{name}"] = value
    if not options.validate_certs:
        host_vars["ansible_nomad_validate_certs"] = False
    return host_vars


class NomadInventoryBase(BaseInventoryPlugin, Constructable, Cacheable):
    """An inventory source file read from Nomad: options, error boundary, cache, constructed hosts."""

    NAME = ""
    FILE_SUFFIXES: tuple = ()
    CACHE_FORMAT = 1
    CACHE_RECORDS_KEY = "records"
    # Salt of the credentials' identity in the cache key (a hash of token and http_auth, never the secrets).
    IDENTITY_SALT = b""
    # What one record is, for the warning on an empty selection ("no allocation matched ...").
    RECORD_NOUN = "record"

    def verify_file(self, path):
        return super().verify_file(path) and str(path).endswith(self.FILE_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        prefix = f"{path}: "
        self._why_empty = None  # set by _fetch_records when a live listing came back empty and it knows why
        try:
            config = self._read_config_data(path)
        except AnsibleError as error:
            raise AnsibleParserError(prefix + self._readable(error)) from None
        self._refuse_unknown_options(config, prefix)
        self._refuse_non_booleans(config, prefix)
        with nomad_errors_as(AnsibleParserError, prefix=prefix):
            options = plugin_connection_options(self, templar=getattr(self, "templar", None))
            selector = self._selector()
            records = self._records(path, options, selector, use_cache=cache)
        if not records:
            why = f"; {self._why_empty}" if self._why_empty else ""
            self.display.warning(f"{prefix}no {self.RECORD_NOUN} matched {self._described(options, selector)}{why}")
        try:
            self._populate(records, options)
        except AnsibleError as error:
            raise AnsibleParserError(prefix + ansible_error_line(error)) from None

    # -- what a plugin supplies
    def _selector(self) -> dict:
        raise NotImplementedError

    def _described(self, options, selector: dict) -> str:
        raise NotImplementedError

    def _fetch_records(self, options, selector: dict) -> list:
        raise NotImplementedError

    def _populate(self, records: list, options) -> None:
        raise NotImplementedError

    def _fingerprint_extras(self) -> dict:
        """Options besides the selector that change what the records hold (a cache entry read without them is stale)."""
        return {}

    # -- options
    def _readable(self, error: AnsibleError) -> str:
        """Ansible's config errors name this plugin by its Python module path; users know it by its FQCN."""
        return ansible_error_line(error).replace(f"'{self._load_name}' inventory plugin", self.NAME).replace(" from 'Direct'", "")

    def _refuse_unknown_options(self, config: t.Mapping, prefix: str) -> None:
        unknown = unknown_names(config, self._options)
        if unknown:
            raise AnsibleParserError(
                f"{prefix}unknown option(s) {', '.join(unknown)}; this plugin takes: {', '.join(sorted(self._options))}"
            )

    def _refuse_non_booleans(self, config: t.Mapping, prefix: str) -> None:
        """Ansible's config system reads any unknown text as false for a bool option (`meta: maybe`)."""
        definitions = C.config.get_configuration_definitions("inventory", self._load_name) or {}
        for name, value in config.items():
            if (definitions.get(name) or {}).get("type") not in ("bool", "boolean") or isinstance(value, bool):
                continue
            try:
                boolean(value, strict=True)
            except TypeError:
                raise AnsibleParserError(f"{prefix}{name} must be true or false (got {value!r})") from None

    # -- reading (from Nomad or the cache)
    def _cache_fingerprint(self, options, selector: dict) -> dict:
        fingerprint = {"format": self.CACHE_FORMAT, "address": options.address, "namespace": options.namespace,
                       "region": options.region, "selector": selector,
                       "identity": credentials_identity(options, self.IDENTITY_SALT)}
        fingerprint.update(self._fingerprint_extras())
        return fingerprint

    def _records(self, path, options, selector: dict, use_cache: bool) -> list:
        caching = bool(self.get_option("cache"))
        fingerprint = self._cache_fingerprint(options, selector)
        # One cache entry per token: a narrower token never reads the hosts a broader one listed.
        key = f"{self.get_cache_key(path)}_{fingerprint['identity'][:16]}"
        if caching and use_cache:
            cached = self._cached_records(key, fingerprint)
            if cached is not None:
                return cached
        records = self._fetch_records(options, selector)
        if caching:
            # Cacheable writes this only after parse() returned, so a failed refresh never replaces a good cache.
            self._cache[key] = {"source": fingerprint, self.CACHE_RECORDS_KEY: records}
        return records

    def _cached_records(self, key: str, fingerprint: dict):
        try:
            entry = self._cache[key]
        except KeyError:
            return None
        if not isinstance(entry, dict) or entry.get("source") != fingerprint:
            return None
        return entry.get(self.CACHE_RECORDS_KEY)

    # -- hosts and groups
    def _connection_host_vars(self, options) -> dict:
        return connection_host_vars(options, explicit_option_values(self, PATH_OPTIONS))

    def _group_adder(self) -> t.Callable[[str], str]:
        """add(raw group name) -> the sanitised group, added once (thousands of hosts share a few groups)."""
        added = {}

        def add(name: str) -> str:
            return added.get(name) or added.setdefault(name, self.inventory.add_group(self._sanitize_group_name(name)))

        return add

    def _add_host(self, host: str, host_vars: dict, groups: list) -> None:
        self.inventory.add_host(host)
        for group in groups:
            self.inventory.add_child(group, host)
        for name, value in host_vars.items():
            self.inventory.set_variable(host, name, value)
        self._construct(host, host_vars)

    def _construct(self, host: str, host_vars: dict) -> None:
        strict = self.get_option("strict")
        if self.get_option("compose"):
            self._set_composite_vars(self.get_option("compose"), host_vars, host, strict=strict)
        if self.get_option("groups"):
            self._add_host_to_composed_groups(self.get_option("groups"), host_vars, host, strict=strict)
        if self.get_option("keyed_groups"):
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, host, strict=strict)
