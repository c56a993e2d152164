# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Structure of the AWX credential type in extensions/awx, checked against AWX's rules for custom types.

AWX validates a credential type when it is created: inputs.fields with unique identifier ids and a
label, types string/boolean, `required` naming existing fields, injectors limited to file/env/extra_vars,
file templates named `template` or `template.<name>`, env names not starting with ANSIBLE_, and
templates that only use the inputs and `tower.filename.<file>`. The injectors are also rendered the way
AWX renders them (a sandboxed Jinja environment) to check what a job actually receives.
"""

from __future__ import annotations

import pathlib
import re

import jinja2
import jinja2.meta
import jinja2.sandbox
import pytest
import yaml

COLLECTION_ROOT = pathlib.Path(__file__).resolve().parents[3]
CREDENTIAL_TYPE_PATH = COLLECTION_ROOT / 'extensions' / 'awx' / 'nomad_credential_type.yml'
JOB_TEMPLATE_PLAYBOOK_PATH = COLLECTION_ROOT / 'extensions' / 'awx' / 'job_template_playbook.yml'

FIELD_KEYS = {'id', 'label', 'type', 'help_text', 'secret', 'multiline', 'choices', 'default', 'format'}
FILE_TEMPLATE_NAME = re.compile(r'^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$')
ENV_NAME = re.compile(r'^[A-Z_][A-Z0-9_]*$')
EXPECTED_ENV = {
    'NOMAD_ADDR', 'NOMAD_TOKEN', 'NOMAD_NAMESPACE', 'NOMAD_REGION', 'NOMAD_CACERT',
    'NOMAD_CLIENT_CERT', 'NOMAD_CLIENT_KEY', 'NOMAD_TLS_SERVER_NAME', 'NOMAD_SKIP_VERIFY',
}
FILE_ENV = {'NOMAD_CACERT': 'ca_cert', 'NOMAD_CLIENT_CERT': 'client_cert', 'NOMAD_CLIENT_KEY': 'client_key'}


@pytest.fixture(scope='module')
def credential_type():
    return yaml.safe_load(CREDENTIAL_TYPE_PATH.read_text(encoding='utf-8'))


@pytest.fixture(scope='module')
def fields(credential_type):
    return {field['id']: field for field in credential_type['inputs']['fields']}


def file_names(credential_type):
    return {label.split('.', 1)[1] for label in credential_type['injectors'].get('file', {}) if '.' in label}


def render_env(credential_type, inputs):
    """Render the env injectors like AWX: inputs by id, file paths under tower.filename."""
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    filenames = {name: f'/runner/env/tmp_{name}' for name in file_names(credential_type)}
    namespace = dict(inputs, tower={'filename': filenames})
    return {name: environment.from_string(template).render(**namespace)
            for name, template in credential_type['injectors']['env'].items()}


def inputs_with_defaults(fields, **values):
    """Inputs as AWX passes them: every field present, empty string / False when not filled in."""
    return {field_id: values.get(field_id, False if field['type'] == 'boolean' else '')
            for field_id, field in fields.items()}


def test_top_level_keys(credential_type):
    assert set(credential_type) == {'name', 'description', 'kind', 'inputs', 'injectors'}
    assert credential_type['kind'] == 'cloud'
    assert set(credential_type['inputs']) == {'fields', 'required'}


def test_fields_are_well_formed(credential_type):
    ids = [field['id'] for field in credential_type['inputs']['fields']]
    assert len(ids) == len(set(ids)), 'duplicate field ids'
    for field in credential_type['inputs']['fields']:
        assert set(field) <= FIELD_KEYS, field
        assert field['id'].isidentifier(), field['id']
        assert field['label'], field['id']
        assert field['type'] in ('string', 'boolean'), field['id']
        if field['type'] == 'boolean':
            assert 'secret' not in field and 'multiline' not in field, field['id']


def test_required_fields_exist(credential_type, fields):
    assert credential_type['inputs']['required'] == ['address']
    assert set(credential_type['inputs']['required']) <= set(fields)


@pytest.mark.parametrize('field_id', ['token', 'client_key'])
def test_secrets_are_marked_secret(fields, field_id):
    assert fields[field_id].get('secret') is True


@pytest.mark.parametrize('field_id', ['ca_cert', 'client_cert', 'client_key'])
def test_pem_inputs_are_multiline(fields, field_id):
    assert fields[field_id].get('multiline') is True


def test_injector_kinds_and_names(credential_type):
    injectors = credential_type['injectors']
    assert set(injectors) <= {'file', 'env', 'extra_vars'}
    for label in injectors['file']:
        assert FILE_TEMPLATE_NAME.match(label), label
    for name in injectors['env']:
        assert ENV_NAME.match(name), name
        assert not name.startswith('ANSIBLE_'), name
    assert set(injectors['env']) == EXPECTED_ENV


def template_variables(template):
    """Names a template reads; Jinja globals are dropped first, since the input `namespace` shadows one."""
    environment = jinja2.Environment()
    environment.globals.clear()
    return jinja2.meta.find_undeclared_variables(environment.parse(template))


def test_templates_only_use_inputs_and_injected_files(credential_type, fields):
    templates = list(credential_type['injectors']['file'].values()) + list(credential_type['injectors']['env'].values())
    for template in templates:
        variables = template_variables(template)
        assert variables <= set(fields) | {'tower'}, template
    for field_id in file_names(credential_type):
        assert field_id in fields, f'file template.{field_id} has no input of that name'


def test_every_input_is_injected(credential_type, fields):
    used = set()
    for template in list(credential_type['injectors']['file'].values()) + list(credential_type['injectors']['env'].values()):
        used |= template_variables(template)
    assert set(fields) <= used


def test_full_credential_injects_every_variable(credential_type, fields):
    inputs = inputs_with_defaults(
        fields, address='https://nomad.example.com:4646', token='3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01',
        namespace='prod', region='eu', ca_cert='-----BEGIN CERTIFICATE-----', client_cert='-----BEGIN CERTIFICATE-----',
        client_key='-----BEGIN PRIVATE KEY-----', tls_server_name='server.global.nomad', skip_verify=True)
    env = render_env(credential_type, inputs)
    assert env == {
        'NOMAD_ADDR': 'https://nomad.example.com:4646',
        'NOMAD_TOKEN': '3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01',
        'NOMAD_NAMESPACE': 'prod',
        'NOMAD_REGION': 'eu',
        'NOMAD_CACERT': '/runner/env/tmp_ca_cert',
        'NOMAD_CLIENT_CERT': '/runner/env/tmp_client_cert',
        'NOMAD_CLIENT_KEY': '/runner/env/tmp_client_key',
        'NOMAD_TLS_SERVER_NAME': 'server.global.nomad',
        'NOMAD_SKIP_VERIFY': 'true',
    }


def test_address_only_credential_leaves_the_rest_empty(credential_type, fields):
    env = render_env(credential_type, inputs_with_defaults(fields, address='http://127.0.0.1:4646'))
    assert env['NOMAD_ADDR'] == 'http://127.0.0.1:4646'
    assert {name: value for name, value in env.items() if name != 'NOMAD_ADDR'} == dict.fromkeys(EXPECTED_ENV - {'NOMAD_ADDR'}, '')


@pytest.mark.parametrize('env_name, field_id', sorted(FILE_ENV.items()))
def test_file_variables_point_at_their_own_file(credential_type, fields, env_name, field_id):
    env = render_env(credential_type, inputs_with_defaults(fields, address='https://n:4646', **{field_id: 'PEM'}))
    assert env[env_name] == f'/runner/env/tmp_{field_id}'
    assert all(env[other] == '' for other in FILE_ENV if other != env_name)
    assert credential_type['injectors']['file'][f'template.{field_id}'] == f'{{{{ {field_id} }}}}'


def test_job_template_playbook_relies_on_the_injected_environment():
    plays = yaml.safe_load(JOB_TEMPLATE_PLAYBOOK_PATH.read_text(encoding='utf-8'))
    connection_options = {'address', 'token', 'namespace', 'region', 'ca_cert', 'client_cert', 'client_key',
                          'tls_server_name', 'validate_certs'}
    nomad_tasks = [task for play in plays for task in play['tasks']
                   if any(key.startswith('nomadops.nomad.') for key in task)]
    assert nomad_tasks
    for task in nomad_tasks:
        module_arguments = next(value for key, value in task.items() if key.startswith('nomadops.nomad.'))
        assert not connection_options & set(module_arguments), task['name']
