/**
 * Issue row 11 (docker path): `Api` and `api` shared one docker tag (image names are lower case)
 * and, on a case-insensitive file system, one state folder. A bottle name that differs from an
 * existing bottle's only in case is now refused by freeze, resume and import, before any tool runs.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caseTwin } from '../../src/core/caseClash';
import { UserError } from '../../src/core/errors';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { MemoryLog } from '../support/memoryLog';
import { resumeBottle } from '../../src/core/resume';
import { Services } from '../../src/core/services';
import { importSnapshot } from '../../src/core/snapshots';

const CLASH = /^Bottle "api" differs from bottle "Api" only in case\./;

describe('bottle names that differ only in case (issue row 11)', () => {
  let dir: string;
  let stateRoot: string;
  let calls: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-case-'));
    stateRoot = join(dir, 'state');
    calls = join(dir, 'calls');
    writeFileSync(calls, '');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A smolvm that lists `machines` and records every call. */
  function services(machines: string[]): Services {
    const smolvm = join(dir, 'smolvm');
    const list = JSON.stringify(machines.map((name) => ({ name, state: 'running' })));
    writeFileSync(smolvm, `#!/bin/sh\necho "$*" >> '${calls}'\necho '${list}'\n`, { mode: 0o755 });
    const paths = { smolvm, docker: '/bin/true', crane: '', skopeo: '/bin/true', registry: '' };
    return new Services({ paths, stateDir: stateRoot, machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1', imageBuilder: 'docker' }, { main: new MemoryLog(), tools: new MemoryLog() });
  }
  const toolCalls = () => readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean);

  it('row 11: freeze refuses "api" while a bottle machine "Api" exists, and runs nothing but the list', async () => {
    const error = await freezeBottle(services(['bot-bottle-Api', 'bot-bottle-api']), 'api', { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(error instanceof UserError, String(error));
    assert.match(error.message, CLASH);
    assert.deepEqual(toolCalls(), ['machine ls --json']);
    assert.ok(!existsSync(join(stateRoot, 'api')), 'no state folder was made');
  });

  it('row 11: freeze refuses "api" when "Api" has a state folder (a snapshot)', async () => {
    mkdirSync(join(stateRoot, 'Api'), { recursive: true });
    const error = await freezeBottle(services(['bot-bottle-api']), 'api', { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.match(String((error as Error).message), CLASH);
  });

  it('row 11: resume into "api" is refused while "Api" exists', async () => {
    const s = services(['bot-bottle-Api']);
    const snapshot = { slug: 'frozen', sidecar: join(dir, 'x.smolmachine'), launcher: join(dir, 'x'), sizeBytes: 0, createdAt: new Date() };
    const error = await resumeBottle(s, snapshot, { signal: new AbortController().signal, asSlug: 'api' }).catch((e: unknown) => e);
    assert.match(String((error as Error).message), CLASH);
    assert.ok(!existsSync(join(stateRoot, 'api')) && !existsSync(join(stateRoot, 'frozen')), 'no lock was taken');
  });

  it('row 11: import as "api" is refused when "Api" has a state folder, and nothing is imported', async () => {
    mkdirSync(join(stateRoot, 'Api'), { recursive: true });
    const source = join(dir, 'some.smolmachine');
    writeFileSync(source, 'not read');
    const error = await importSnapshot(services([]).store, source, 'api').catch((e: unknown) => e);
    assert.match(String((error as Error).message), CLASH);
    assert.ok(!existsSync(join(stateRoot, 'api')));
  });

  it('finds a twin only in another case, never the name itself', () => {
    assert.equal(caseTwin('api', ['Api', 'docs']), 'Api');
    assert.equal(caseTwin('api', ['api', 'docs']), undefined);
    assert.equal(caseTwin('API', ['api']), 'api');
    assert.equal(caseTwin('api', []), undefined);
  });
});
