import assert from 'node:assert/strict';
import { UserError } from '../../src/core/errors';
import type { FreezeState } from '../../src/core/freeze/context';
import { archiveExcludes, findMounts, mountsLeftOut, parseVirtiofsMounts } from '../../src/core/freeze/mounts';
import type { RunOptions, RunResult } from '../../src/core/run';
import { SmolvmCli } from '../../src/core/tools/smolvm';

/** An overlay root as crun makes it, with two -v mounts, a bind of the storage disk and the agent's own virtiofs share under /run. */
const MOUNTS = [
  'overlay / overlay rw,relatime,lowerdir=/storage/layers/a,upperdir=/storage/overlays/p/upper,workdir=/storage/overlays/p/work 0 0',
  'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0',
  'smolvm0 /workspace virtiofs rw,relatime 0 0',
  'smolvm1 /home/node/my\\040notes virtiofs ro,relatime 0 0',
  '/dev/vdb /storage ext4 rw,relatime 0 0',
  'shared /run/control virtiofs rw,relatime 0 0',
  '',
].join('\n');

function stateWith(table: string, includeMounts = false): { state: FreezeState; asked: string[][] } {
  const asked: string[][] = [];
  const run = async (argv: readonly string[], _options?: RunOptions): Promise<RunResult> => {
    asked.push(argv.slice(argv.indexOf('--') + 1));
    return { exitCode: 0, stdout: table, stderr: '' };
  };
  return { state: { machine: 'bot-bottle-x', tools: { smolvm: new SmolvmCli('smolvm') }, run, includeMounts } as unknown as FreezeState, asked };
}

const signal = new AbortController().signal;

describe('the bottle’s mounts in a freeze', () => {
  it('reads the virtiofs entries of the guest’s mount table, octal escapes undone (crates/smolvm-agent/src/main.rs:3588-3595, src/data/storage.rs:210-212)', () => {
    assert.deepEqual(parseVirtiofsMounts(MOUNTS), [
      { tag: 'smolvm0', path: '/workspace' },
      { tag: 'smolvm1', path: '/home/node/my notes' },
      { tag: 'shared', path: '/run/control' },
    ]);
  });

  it('leaves the mounts out of tar by default, not those under a folder it leaves out anyway, and none when they are included', () => {
    const mounts = parseVirtiofsMounts(MOUNTS);
    assert.deepEqual(mountsLeftOut({ mounts }), ['/workspace', '/home/node/my notes']);
    assert.deepEqual(archiveExcludes({ mounts }).slice(-2), ['./workspace', './home/node/my notes']);
    assert.deepEqual(mountsLeftOut({ mounts, includeMounts: true }), []);
    assert.deepEqual(archiveExcludes({ mounts: [{ tag: 'smolvm0', path: '/w*[x]?' }] }).at(-1), './w\\*\\[x]\\?', 'a wildcard in a path is taken as itself');
    assert.deepEqual(mountsLeftOut({ mounts: [{ tag: 'smolvm0', path: '/' }] }), [], 'never the whole root');
  });

  it('reads them in the guest unless smolvm counts none, and refuses when the guest shows fewer than smolvm counts (src/cli/vm_common.rs:2469-2520), unless they are included anyway', async () => {
    const { state, asked } = stateWith(MOUNTS);
    assert.equal((await findMounts(state, 2, signal)).length, 3);
    assert.equal((await findMounts(state, undefined, signal)).length, 3, 'a smolvm that does not count them');
    assert.deepEqual(asked, [['cat', '/proc/self/mounts'], ['cat', '/proc/self/mounts']]);
    assert.deepEqual(await findMounts(state, 0, signal), []);
    assert.equal(asked.length, 2, 'no exec when smolvm counts no mount');
    await assert.rejects(findMounts(stateWith(MOUNTS).state, 4, signal), (error: Error) => error instanceof UserError && /smolvm reports 4 mount\(s\) for bot-bottle-x, but its \/proc\/self\/mounts shows 3 .*Nothing was archived/.test(error.message));
    assert.equal((await findMounts(stateWith(MOUNTS, true).state, 4, signal)).length, 3);
  });
});
