# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection options: one argument spec, one resolution function, for every runtime.

Precedence (documented once, in the ``connection`` doc fragment): task arguments / inventory file options,
then ``module_defaults``, then ``ansible_nomad_<option>`` variables, then the ``[nomadops_nomad]`` ini section
(both resolved on the controller by ``plugin_utils/_options.py``), then the ``NOMAD_*`` environment variables,
then the defaults.  The environment is read only through the ``fallback`` entries of this spec, so every
runtime sees the same variables.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.errors import AnsibleFallbackNotFound
from urllib.parse import unquote, urlsplit

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOptionError

DEFAULT_ADDRESS = "http://127.0.0.1:4646"
DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT = 30
DEFAULT_RETRIES = 3

# Go's strconv.ParseBool, which Nomad's CLI uses for NOMAD_SKIP_VERIFY.
_GO_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_GO_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_go_bool(text):
    """Parse like Go's strconv.ParseBool; None when the text is not a Go boolean."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    return None


SKIP_VERIFY_VARIABLE = "NOMAD_SKIP_VERIFY"


def validate_certs_fallback():
    """validate_certs from NOMAD_SKIP_VERIFY (inverted); unparsable values are ignored, as Nomad does."""
    skip_verify = parse_go_bool(os.environ.get(SKIP_VERIFY_VARIABLE, ""))
    if skip_verify is None:
        raise AnsibleFallbackNotFound
    return not skip_verify


CONNECTION_ARGUMENT_SPEC = dict(
    address=dict(type="str", default=DEFAULT_ADDRESS, fallback=(env_fallback, ["NOMAD_ADDR"])),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["NOMAD_TOKEN"])),
    namespace=dict(type="str", default=DEFAULT_NAMESPACE, fallback=(env_fallback, ["NOMAD_NAMESPACE"])),
    region=dict(type="str", fallback=(env_fallback, ["NOMAD_REGION"])),
    ca_cert=dict(type="path", fallback=(env_fallback, ["NOMAD_CACERT"])),
    ca_path=dict(type="path", fallback=(env_fallback, ["NOMAD_CAPATH"])),
    client_cert=dict(type="path", fallback=(env_fallback, ["NOMAD_CLIENT_CERT"])),
    client_key=dict(type="path", fallback=(env_fallback, ["NOMAD_CLIENT_KEY"])),
    tls_server_name=dict(type="str", fallback=(env_fallback, ["NOMAD_TLS_SERVER_NAME"])),
    validate_certs=dict(type="bool", default=True, fallback=(validate_certs_fallback,)),
    http_auth=dict(type="str", no_log=True, fallback=(env_fallback, ["NOMAD_HTTP_AUTH"])),
    timeout=dict(type="float", default=DEFAULT_TIMEOUT),
    retries=dict(type="int", default=DEFAULT_RETRIES),
)


def fallback_variables(argument_spec):
    """Every environment variable the ``fallback`` entries of ``argument_spec`` read, in spec order."""
    names = []
    for option in argument_spec.values():
        fallback = option.get("fallback")
        if not fallback:
            continue
        if fallback[0] is env_fallback:
            names.extend(fallback[1])
        elif fallback[0] is validate_certs_fallback:
            names.append(SKIP_VERIFY_VARIABLE)
    return tuple(names)


CONNECTION_ENV_VARIABLES = fallback_variables(CONNECTION_ARGUMENT_SPEC)


def connection_values_from_environment(environment):
    """The connection options that the ``NOMAD_*`` variables of ``environment`` (a mapping) set, read as the
    spec's fallbacks read the process environment: for actions that run on the controller, where a task's
    ``environment:`` keyword never reaches ``os.environ``."""
    values = {}
    for name, option in CONNECTION_ARGUMENT_SPEC.items():
        fallback = option.get("fallback") or (None,)
        if fallback[0] is env_fallback:
            found = [environment[variable] for variable in fallback[1] if variable in environment]
            if found:
                values[name] = found[0]
    skip_verify = parse_go_bool(str(environment.get(SKIP_VERIFY_VARIABLE, "")))
    if skip_verify is not None:
        values["validate_certs"] = not skip_verify
    return values


@dataclass(frozen=True)
class ConnectionOptions:
    """Resolved connection settings.  Secrets are kept out of repr()."""

    address: str = DEFAULT_ADDRESS
    token: str | None = field(default=None, repr=False)
    namespace: str = DEFAULT_NAMESPACE
    region: str | None = None
    ca_cert: str | None = None
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_server_name: str | None = None
    validate_certs: bool = True
    http_auth: tuple | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @property
    def uses_tls(self):
        return self.address.startswith("https://")

    @property
    def secrets(self):
        """Every secret value, so that messages can be scrubbed of them."""
        values = [self.token] if self.token else []
        if self.http_auth and self.http_auth[1]:
            values.append(self.http_auth[1])
        # Whatever their length: a short password may garble a message it is scrubbed from, but never shows.
        return tuple(values)


def _split_address(address):
    """(base URL without userinfo or trailing slash, (user, password) from the userinfo or None)."""
    address = address.strip()
    if "://" not in address:
        # Nomad's SDK accepts a bare host:port and assumes http.
        address = f"http://{address}"
    try:
        parts = urlsplit(address)
    except ValueError as exc:
        raise NomadOptionError(f"address {_without_userinfo(address)!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise NomadOptionError(
            f"address must start with http:// or https:// (got scheme {parts.scheme!r}); unix sockets are not supported"
        )
    try:
        hostname = parts.hostname
        parts.port  # pylint: disable=pointless-statement  # raises ValueError on a bad port
    except ValueError as exc:
        raise NomadOptionError(f"address {_without_userinfo(address)!r} is not a valid URL: {exc}") from None
    if not hostname:
        raise NomadOptionError(f"address {_without_userinfo(address)!r} has no host name")
    host = parts.netloc.rpartition("@")[2]
    base = f"{scheme}://{host}{parts.path.rstrip('/')}"
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    return base, auth


def _without_userinfo(address):
    scheme, sep, rest = address.partition("://")
    netloc, slash, path = rest.partition("/")
    return scheme + sep + netloc.rpartition("@")[2] + slash + path


def _parse_http_auth(value):
    """NOMAD_HTTP_AUTH semantics: 'user:pass' or just 'user'."""
    if value is None or value == "":
        return None
    _require_header_text("http_auth", value)
    user, _sep, password = value.partition(":")
    return (user, password)


def _require_header_text(option, value):
    """HTTP header values are Latin-1: anything else cannot be sent, so refuse it here, once, for every runtime.
    The message names the option, never the value."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise NomadOptionError(
            f"{option} contains characters that cannot be sent in an HTTP header (only Latin-1 text works); "
            "check that the right secret was given"
        ) from None


def _clean_token(token):
    """Nomad trims the token header, so a trailing newline (a token read from a file) is harmless there too;
    other control characters cannot be sent in a header.  The message never shows the token."""
    if token is None:
        return None
    token = token.strip()
    if not token:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in token):
        raise NomadOptionError("token contains control characters (check how it was read or templated)")
    _require_header_text("token", token)
    return token


def _check_file(name, path):
    if path is None:
        return
    if not os.path.isfile(path):
        raise NomadOptionError(f"{name} {path!r} is not a readable file")


def _check_ca_path(path):
    if path is None:
        return
    if not os.path.isdir(path):
        raise NomadOptionError(f"ca_path {path!r} is not a directory (use ca_cert for a single PEM file)")


def _clean(value):
    """Empty strings from the environment or templates mean 'not set'."""
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def secrets_in_params(params):
    """Secret values inside options that are not no_log themselves: the password of a
    `user:password@` in address.  Runtimes add them to their no_log values so nothing echoes them."""
    address = params.get("address")
    if not isinstance(address, str) or "@" not in address:
        return set()
    try:
        password = urlsplit(address if "://" in address else f"http://{address}").password
    except ValueError:
        return set()
    if not password:
        return set()
    return {password, unquote(password)}


def unknown_names(given, known):
    """The names in `given` that are not in `known`, sorted: the one unknown-option check of every plugin kind."""
    known = set(known)
    return sorted(str(name) for name in given if name not in known)


def did_you_mean(unknown, known):
    """` (did you mean job?)` for one unknown name, ` (did you mean job for jbo, task for tsk?)` for several,
    naming the closest known name of each that has one; empty when none is close."""
    guesses = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), known, n=1)
        if close:
            guesses.append(f"{close[0]} for {name}" if len(unknown) > 1 else close[0])
    return f" (did you mean {', '.join(guesses)}?)" if guesses else ""


def unknown_option_names(given, argument_spec):
    """The names in `given` (task arguments) that are neither an option nor an alias of `argument_spec`;
    ansible-core's internal `_ansible_*` arguments are not options."""
    known = set(argument_spec)
    for option in argument_spec.values():
        known.update(option.get("aliases") or ())
    return unknown_names((name for name in given if not str(name).startswith("_ansible_")), known)


def unknown_options_message(plugin_name, unknown, argument_spec):
    """One line naming every unknown option, the closest known one for each, and the supported options.

    ansible-core's own check reports only its first error (often 'missing required arguments: signal' for a
    misspelt 'sginal'), so the collection names the misspelling first."""
    known = sorted(argument_spec)
    return (
        f"Unsupported parameters for ({plugin_name}) module: {', '.join(map(str, unknown))}"
        f"{did_you_mean(unknown, known)}. Supported parameters include: {', '.join(known)}."
    )


def connection_options_from_params(params):
    """Turn validated parameters (module.params, lookup options, action args) into ConnectionOptions.

    Raises NomadOptionError with a one-line message when a value cannot work.
    """
    address = _clean(params.get("address")) or DEFAULT_ADDRESS
    base, address_auth = _split_address(address)
    http_auth = address_auth or _parse_http_auth(_clean(params.get("http_auth")))
    if address_auth:
        _require_header_text("the user:password in address", ":".join(address_auth))

    namespace = _clean(params.get("namespace")) or DEFAULT_NAMESPACE
    timeout = params.get("timeout")
    timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if timeout <= 0:
        raise NomadOptionError(f"timeout must be a positive number of seconds (got {timeout:g})")
    retries = params.get("retries")
    retries = DEFAULT_RETRIES if retries is None else int(retries)
    if retries < 0:
        raise NomadOptionError(f"retries must be 0 or more (got {retries})")

    ca_cert = _clean(params.get("ca_cert"))
    ca_path = _clean(params.get("ca_path"))
    client_cert = _clean(params.get("client_cert"))
    client_key = _clean(params.get("client_key"))
    _check_file("ca_cert", ca_cert)
    _check_ca_path(ca_path)
    _check_file("client_cert", client_cert)
    _check_file("client_key", client_key)
    if client_key and not client_cert:
        raise NomadOptionError("client_key needs client_cert (the certificate that goes with the key)")

    validate_certs = params.get("validate_certs")
    return ConnectionOptions(
        address=base,
        token=_clean_token(params.get("token")),
        namespace=namespace,
        region=_clean(params.get("region")),
        ca_cert=ca_cert,
        ca_path=None if ca_cert else ca_path,  # Nomad: CACERT wins over CAPATH
        client_cert=client_cert,
        client_key=client_key,
        tls_server_name=_clean(params.get("tls_server_name")),
        validate_certs=True if validate_certs is None else bool(validate_certs),
        http_auth=http_auth,
        timeout=timeout,
        retries=retries,
    )
