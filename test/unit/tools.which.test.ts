import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/core/errors';
import { findExecutable, requireExecutable } from '../../src/core/executables';

describe('finding executables', () => {
  let dir: string;
  let bin: string;
  let other: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-which-'));
    bin = join(dir, 'bin');
    other = join(dir, 'other');
    mkdirSync(bin);
    mkdirSync(other);
    writeFileSync(join(bin, 'docker-registry'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(bin, 'skopeo'), '#!/bin/sh\n', { mode: 0o644 });
    writeFileSync(join(other, 'skopeo'), '#!/bin/sh\n', { mode: 0o755 });
    mkdirSync(join(bin, 'crane'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('searches PATH in order, skipping files that are not executable and folders', () => {
    assert.equal(findExecutable('skopeo', undefined, `${bin}:${other}`), join(other, 'skopeo'));
    assert.equal(findExecutable('crane', undefined, `${bin}:${other}`), undefined);
    assert.equal(findExecutable('skopeo', '  ', `relative:${other}`), join(other, 'skopeo'));
  });

  it('finds Debian\'s docker-registry for the registry', () => {
    assert.equal(findExecutable('registry', undefined, bin), join(bin, 'docker-registry'));
  });

  it('uses a configured path as it is, and names the setting when it is wrong', () => {
    const configured = join(other, 'skopeo');
    assert.equal(findExecutable('skopeo', configured, ''), configured);
    assert.throws(() => findExecutable('skopeo', join(bin, 'skopeo'), other), /botBottle\.paths\.skopeo is set to ".*", but that is not executable/);
    assert.throws(() => findExecutable('crane', join(bin, 'crane'), ''), /botBottle\.paths\.crane .* is not a file/);
    assert.throws(() => findExecutable('docker', join(dir, 'nope'), ''), /botBottle\.paths\.docker .* does not exist/);
    assert.throws(() => findExecutable('docker', 'bin/docker', ''), /botBottle\.paths\.docker .* absolute path/);
  });

  it('looks a configured bare name up on PATH', () => {
    assert.equal(findExecutable('registry', 'docker-registry', bin), join(bin, 'docker-registry'));
    assert.throws(() => findExecutable('registry', 'registry', bin), (error: unknown) => error instanceof UserError && /no program of that name/.test(error.message));
  });

  it('says how to fix a missing tool', () => {
    chmodSync(join(bin, 'skopeo'), 0o644);
    assert.throws(() => requireExecutable('registry', undefined, other), /registry or docker-registry was not found on PATH.*botBottle\.paths\.registry/);
  });
});
