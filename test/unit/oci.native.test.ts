import assert from 'node:assert/strict';
import { UserError } from '../../src/core/errors';
import type { FreezeState } from '../../src/core/freeze/context';
import { inspectVm, parseDfAvailableKib, parseDuKib } from '../../src/core/freeze/native';
import { chooseImageBuilder, DOCKER_FREEZE_STEPS, NATIVE_FREEZE_STEPS } from '../../src/core/freeze/smolmachines';
import { MemoryLog } from '../support/memoryLog';
import type { StepContext } from '../../src/core/pipeline';
import type { RunOptions, RunResult } from '../../src/core/run';
import { SmolvmCli } from '../../src/core/tools/smolvm';

const DF = `Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/vda         264212084 24951948  81438964      24% /
`;

/** A VM that answers uname, du and df as told, and records what it was asked. */
function fakeVm(answers: { uname: string; duKib: number; freeKib: number }) {
  const asked: string[][] = [];
  const run = async (argv: readonly string[], _options?: RunOptions): Promise<RunResult> => {
    const command = argv.slice(argv.indexOf('--') + 1);
    asked.push(command);
    const stdout = { uname: `${answers.uname}\n`, du: `${answers.duKib}\t/\n`, df: DF.replace('81438964', String(answers.freeKib)) }[command[0] as 'uname' | 'du' | 'df'];
    return { exitCode: 0, stdout, stderr: '' };
  };
  return { run, asked };
}

function stateFor(vm: ReturnType<typeof fakeVm>, compression: 'gzip' | 'none'): FreezeState {
  const partial: Partial<FreezeState> = {
    machine: 'bot-bottle-x',
    tools: { smolvm: new SmolvmCli('/usr/bin/smolvm') },
    run: vm.run,
    toolLog: new MemoryLog(),
    compression,
    format: compression,
    imageBuilder: 'native',
  };
  return partial as FreezeState;
}

const ctx = { signal: new AbortController().signal, log: new MemoryLog() } as unknown as StepContext;

describe('native freeze: choosing and inspecting', () => {
  it('picks native unless docker is chosen', () => {
    assert.equal(chooseImageBuilder(undefined), 'native');
    assert.equal(chooseImageBuilder('auto'), 'native');
    assert.equal(chooseImageBuilder('native'), 'native');
    assert.equal(chooseImageBuilder('docker'), 'docker');
  });

  it('has no docker, save or push step on the native path, and the same ends as the docker path', () => {
    assert.deepEqual(NATIVE_FREEZE_STEPS.map((s) => s.id), ['probe', 'inspect', 'list', 'archive', 'copy', 'image', 'pack', 'keep', 'bot-bottle']);
    assert.deepEqual(DOCKER_FREEZE_STEPS.map((s) => s.id), ['probe', 'archive', 'copy', 'build', 'save', 'push', 'pack', 'keep', 'bot-bottle']);
  });

  it('reads du and POSIX df output', () => {
    assert.equal(parseDuKib('10560\t/\n'), 10560);
    assert.equal(parseDfAvailableKib(DF), 81438964);
    assert.equal(parseDfAvailableKib('Filesystem 1024-blocks Used Available Capacity Mounted on\n-  1024 0 1024 0% /var/tmp\n'), 1024);
    assert.equal(parseDfAvailableKib('Filesystem 1024-blocks Used Available Capacity Mounted on\nmy disk 10 2 8 20% /mnt/with space\n'), 8);
    assert.throws(() => parseDuKib('du: cannot access'), /du printed/);
    assert.throws(() => parseDfAvailableKib('df: /var/tmp: No such file'), /df printed/);
  });

  it('learns the architecture, and checks no space for a gzip archive', async () => {
    const vm = fakeVm({ uname: 'aarch64', duKib: 10, freeKib: 1 });
    const state = stateFor(vm, 'gzip');
    await inspectVm.run(ctx, state);
    assert.equal(state.architecture, 'arm64');
    // Whether it then asks for zstd depends on this host having zstd; it never measures room for a gzip archive.
    assert.deepEqual(vm.asked.filter((c) => c[0] !== 'zstd'), [['uname', '-m']]);
    assert.equal(state.format, 'gzip', 'this VM has no zstd: the archive stays gzip');
  });

  it('checks /var/tmp against the root’s size before a plain archive, leaving out what tar leaves out', async () => {
    const vm = fakeVm({ uname: 'x86_64', duKib: 500 * 1024, freeKib: 2 * 1024 * 1024 });
    await inspectVm.run(ctx, stateFor(vm, 'none'));
    assert.deepEqual(vm.asked.map((c) => c[0]), ['uname', 'du', 'df']);
    assert.deepEqual(vm.asked[1], ['du', '-sk', '--exclude=/proc', '--exclude=/sys', '--exclude=/dev', '--exclude=/run', '--exclude=/tmp', '--exclude=/var/tmp', '/']);
    assert.deepEqual(vm.asked[2], ['df', '-Pk', '/var/tmp']);
  });

  it('counts what tar archives: the mounts it leaves out are left out of du too, and counted when included (du without -x)', async () => {
    const mounts = [{ path: '/workspace', tag: 'smolvm0' }, { path: '/data/[raw]', tag: 'smolvm1' }, { path: '/tmp/x', tag: 'smolvm2' }];
    const leftOut = fakeVm({ uname: 'x86_64', duKib: 1, freeKib: 1024 * 1024 });
    await inspectVm.run(ctx, { ...stateFor(leftOut, 'none'), mounts });
    assert.deepEqual(leftOut.asked[1].slice(-3), ['--exclude=/workspace', '--exclude=/data/\\[raw]', '/']);
    const included = fakeVm({ uname: 'x86_64', duKib: 1, freeKib: 1024 * 1024 });
    await inspectVm.run(ctx, { ...stateFor(included, 'none'), mounts, includeMounts: true });
    assert.deepEqual(included.asked[1].slice(-2), ['--exclude=/var/tmp', '/']);
  });

  it('refuses a plain archive that would not fit, saying what to do', async () => {
    const vm = fakeVm({ uname: 'x86_64', duKib: 500 * 1024, freeKib: 520 * 1024 });
    await assert.rejects(
      inspectVm.run(ctx, stateFor(vm, 'none')),
      (error: Error) => error instanceof UserError && /not enough free space in the bottle's \/var\/tmp/i.test(error.message) && /botBottle\.freeze\.compression/.test(error.message),
    );
  });
});
