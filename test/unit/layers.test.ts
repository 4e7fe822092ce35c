/**
 * The floors of src/: imports flow one way,
 *   cli → gateway | services → dashboard → upstream | queue → resilience → domain → shared
 * A folder may import itself and any folder on a lower floor; folders on one floor are peers
 * and do not import each other.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

const FLOORS: readonly (readonly string[])[] = [
  ['shared'],
  ['domain'],
  ['resilience'],
  ['upstream', 'queue'],
  ['dashboard'],
  ['gateway', 'services'],
  ['cli'],
];
const floorOf = new Map(FLOORS.flatMap((folders, floor) => folders.map((f) => [f, floor] as const)));

interface Violation { readonly file: string; readonly imports: string }

/** Relative specifiers of every static import/export-from and dynamic import() in a source text. */
function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

/** The imports of one file (path relative to src/) that run upward or sideways. */
function violations(file: string, source: string): Violation[] {
  const from = file.split(sep)[0]!;
  const own = floorOf.get(from);
  if (own === undefined) return [{ file, imports: `(the folder ${from}/ has no floor)` }];
  const out: Violation[] = [];
  for (const spec of importSpecifiers(source)) {
    const target = relative(SRC, resolve(SRC, dirname(file), spec)).split(sep)[0]!;
    if (target === from) continue;
    const floor = floorOf.get(target);
    if (floor === undefined || floor >= own) out.push({ file, imports: spec });
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'public' ? [] : sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('import floors', () => {
  it('when any file under src/ imports a folder on its own floor or above, then that import is listed here', () => {
    const found = sources(SRC).flatMap((path) => violations(relative(SRC, path), readFileSync(path, 'utf8')));
    assert.deepEqual(found, []);
  });

  it('when a file imports upward, sideways or from an unknown folder, then the check reports each such import', () => {
    const source = [
      "import { compute } from '../domain/compute.js';",
      "import type { Config } from '../shared/config.js';",
      "import { createUpstreams } from '../upstream/index.js';",
      "export { x } from '../queue/types.js';",
      "const m = await import('../gateway/build.js');",
      "import './local.js';",
    ].join('\n');
    assert.deepEqual(violations(join('queue', 'sqlite.ts'), source).map((v) => v.imports), [
      '../upstream/index.js',
      '../gateway/build.js',
    ]);
    assert.deepEqual(violations(join('nowhere', 'x.ts'), '').length, 1);
    assert.deepEqual(violations(join('services', 'evaluator', 'server.ts'), "import { a } from '../../domain/parser.js';"), []);
  });
});
