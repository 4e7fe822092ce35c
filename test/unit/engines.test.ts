/**
 * `npm ci` on the Node the machines have must print no EBADENGINE warning: every locked package
 * (dev ones too, CI installs them) declares an engine range that the project's own floor meets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import semver from 'semver';

const root = new URL('../../', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

/** The lowest Node release the project declares, and Node 20's newest line as the machines run it. */
const floor = semver.minVersion(manifest.engines.node)!;

describe('engines', () => {
  it('when npm ci runs on the declared Node floor, then no locked package wants a newer Node', () => {
    const refused = Object.entries(lock.packages)
      .filter(([path, pkg]) => path !== '' && pkg.engines && !Array.isArray(pkg.engines) && pkg.engines.node)
      .filter(([, pkg]) => !semver.satisfies(floor, (pkg.engines as { node: string }).node))
      .map(([path, pkg]) => `${path}@${pkg.version}: node ${(pkg.engines as { node: string }).node}`);
    assert.deepEqual(refused, []);
  });

  it('when the floor is checked, then it is a Node 20 release', () => {
    assert.equal(floor.major, 20);
  });
});
