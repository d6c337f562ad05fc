import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/core/errors';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { StepFailedError } from '../../src/core/errors';
import { sha256, startWorld, type World } from '../support/world';

const signal = () => new AbortController().signal;

describe('freeze: tar exit statuses, one freeze per bottle, bottles side by side', function () {
  let world: World;
  before(async () => {
    world = await startWorld('concurrency');
    world.createRunningBottle('one');
    world.createRunningBottle('two');
  });
  after(async () => world?.stop());

  it("takes tar's exit 1 (files changed while read) as success", async () => {
    const undo = world.withEnv({ SMOLVM_SIM_TAR_EXIT: '1@bot-bottle-one' });
    try {
      const snapshot = await freezeBottle(world.services(), 'one', { signal: signal() });
      assert.equal(snapshot.record?.sha256, sha256(readFileSync(snapshot.sidecar)));
    } finally {
      undo();
    }
  });

  it("fails on tar's exit 2, naming the step and tar's words, and keeps the last snapshot", async () => {
    const before = sha256(readFileSync(join(world.stateRoot, 'one', 'committed-smolmachine.smolmachine')));
    const undo = world.withEnv({ SMOLVM_SIM_TAR_EXIT: '2@bot-bottle-one' });
    try {
      const error = await freezeBottle(world.services(), 'one', { signal: signal() }).catch((e) => e);
      assert.ok(error instanceof StepFailedError);
      assert.equal(error.stepId, 'archive');
      assert.match(error.message, /^Archiving the root filesystem failed: smolvm exited with status 2: tar: Exiting with failure status/);
    } finally {
      undo();
    }
    assert.equal(sha256(readFileSync(join(world.stateRoot, 'one', 'committed-smolmachine.smolmachine'))), before);
  });

  it('refuses a second freeze of a bottle while one runs, and freezes two bottles at once', async () => {
    const undo = world.withEnv({ SMOLVM_SIM_DELAY: 'cp@bot-bottle-one=1500' });
    try {
      const first = freezeBottle(world.services(), 'one', { signal: signal() });
      await new Promise((r) => setTimeout(r, 300));
      const second = await freezeBottle(world.services(), 'one', { signal: signal() }).catch((e) => e);
      assert.ok(second instanceof UserError);
      assert.match(second.message, /^A freeze of bottle "one" is already running \(in this window, since .*\)\. Wait for it to finish\.$/);
      const other = freezeBottle(world.services(), 'two', { signal: signal() });
      const [a, b] = await Promise.all([first, other]);
      assert.equal(a.slug, 'one');
      assert.equal(b.slug, 'two');
      for (const snapshot of [a, b]) assert.equal(snapshot.record?.sha256, sha256(readFileSync(snapshot.sidecar)));
    } finally {
      undo();
    }
  });
});
