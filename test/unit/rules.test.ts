// One definition of each rule that once existed twice and drifted apart; each tested here as itself.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ociRuntimeConfig, dockerfileForRootfs } from '../../src/core/committedImage';
import { UserError } from '../../src/core/errors';
import { formatDuration } from '../../src/core/format';
import { VM_ARCHIVES, VM_FILES_LIST, VM_LISTING, vmArchivePath, type FreezeState } from '../../src/core/freeze/context';
import { archiveRootfs } from '../../src/core/freeze/steps';
import { CLEANUP_TIMEOUT_MS, type StepContext } from '../../src/core/pipeline';
import { bindAddressFor, checkedPullHost } from '../../src/core/pullHost';
import type { RunOptions, RunResult } from '../../src/core/run';
import { COMPRESSIONS, DEFAULT_SETTINGS } from '../../src/core/settings';
import { SmolvmCli } from '../../src/core/tools/smolvm';
import type { SnapshotRecord } from '../../src/core/state';
import { bottleContextValue, snapshotContextValue } from '../../src/ui/contextValues';
import { MemoryLog } from '../support/memoryLog';

describe('the pull host rule (one for the docker and the native path)', () => {
  it('binds loopback for a host name and for 127.0.0.1', () => {
    for (const host of ['127.0.0.1', 'localhost', 'host.smolvm.internal', ' 127.0.0.1 ']) assert.equal(bindAddressFor(host), '127.0.0.1', host);
  });

  it('binds the address it names: ::1 and IPv4-mapped forms included', () => {
    assert.equal(bindAddressFor('[::1]'), '::1');
    assert.equal(bindAddressFor('[::ffff:127.0.0.1]'), '::ffff:127.0.0.1');
    assert.equal(checkedPullHost('[::ffff:127.0.0.1]'), '[::ffff:127.0.0.1]');
  });

  it('refuses every spelling of the wildcard, [::ffff:0.0.0.0] included', () => {
    for (const wildcard of ['0.0.0.0', '[::]', '[0:0:0:0:0:0:0:0]', '[::ffff:0.0.0.0]', '[::ffff:0:0]']) {
      assert.throws(() => bindAddressFor(wildcard), { message: `botBottle.registry.pullHost must name one address, not "${wildcard}" (every network).` }, wildcard);
    }
  });

  it('refuses schemes, ports, paths and brackets around what is not IPv6', () => {
    for (const bad of ['http://host', 'host:5000', '[127.0.0.1]', '[::1]:5000', 'a b', '', '[zz::1]']) {
      assert.throws(() => checkedPullHost(bad), UserError, bad);
    }
  });
});

describe('the committed image (one description for the docker and the native path)', () => {
  it('the Dockerfile and the OCI config name the same user and working folder', () => {
    const config = ociRuntimeConfig();
    const dockerfile = dockerfileForRootfs();
    assert.match(dockerfile, new RegExp(`^USER ${config.User}$`, 'm'));
    assert.match(dockerfile, new RegExp(`^WORKDIR ${config.WorkingDir}$`, 'm'));
    assert.deepEqual(config, { User: 'node', WorkingDir: '/home/node', Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] });
  });
});

describe('the archive in the VM (one path for freeze and recovery)', () => {
  it('recovery removes exactly the archive each compression makes, and the listing files of an incremental freeze', () => {
    assert.deepEqual([...VM_ARCHIVES].sort(), [...COMPRESSIONS.map(vmArchivePath), vmArchivePath('zstd'), VM_LISTING, VM_FILES_LIST].sort());
    assert.deepEqual([...VM_ARCHIVES].sort(), [
      '/var/tmp/.bot-bottle-commit.tar',
      '/var/tmp/.bot-bottle-commit.tar.gz',
      '/var/tmp/.bot-bottle-commit.tar.zst',
      '/var/tmp/.bot-bottle-files',
      '/var/tmp/.bot-bottle-listing',
    ]);
  });

  it('the archive step removes it afterwards without the signal, within the cleanup time limit', async () => {
    const calls: Array<{ argv: readonly string[]; options?: RunOptions }> = [];
    const run = async (argv: readonly string[], options?: RunOptions): Promise<RunResult> => {
      calls.push({ argv, options });
      return { exitCode: 0, stdout: '', stderr: '' };
    };
    const cleanups: Array<() => unknown> = [];
    const ctx = { signal: new AbortController().signal, defer: (_label: string, cleanup: () => unknown) => cleanups.push(cleanup) } as unknown as StepContext;
    const state = { machine: 'bot-bottle-x', tools: { smolvm: new SmolvmCli('smolvm') }, run, toolLog: new MemoryLog(), compression: 'none', format: 'none' } as unknown as FreezeState;
    await archiveRootfs.run(ctx, state);
    await cleanups[0]();
    const removal = calls.at(-1)!;
    assert.deepEqual(removal.argv.slice(removal.argv.indexOf('--') + 1), ['rm', '-f', vmArchivePath('none')]);
    assert.equal(removal.options?.timeoutMs, CLEANUP_TIMEOUT_MS);
    assert.equal(removal.options?.signal, undefined);
  });
});

describe('durations (one formatter, in milliseconds)', () => {
  it('reads as a person would say it', () => {
    const cases: Array<[number, string]> = [
      [0, '0 s'], [250, '250 ms'], [2000, '2 s'], [15_000, '15 s'], [59_999, '59 s'], [60_000, '1 min'],
      [3_600_000, '1 h'], [3_900_000, '1 h 5 min'], [86_400_000, '1 d'], [93_600_000, '1 d 2 h'], [-5, '0 s'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  });
});

describe('setting defaults (one set, declared twice: here and in package.json)', () => {
  const declared = JSON.parse(readFileSync('package.json', 'utf8')).contributes.configuration.properties as Record<string, { default: unknown }>;
  const fromCode: Record<string, unknown> = {
    'botBottle.stateDir': DEFAULT_SETTINGS.stateDir,
    'botBottle.machinePrefix': DEFAULT_SETTINGS.machinePrefix,
    'botBottle.refreshInterval': DEFAULT_SETTINGS.refreshInterval,
    'botBottle.statusBar.enabled': DEFAULT_SETTINGS.statusBarEnabled,
    'botBottle.registry.pullHost': DEFAULT_SETTINGS.pullHost,
    'botBottle.freeze.imageBuilder': DEFAULT_SETTINGS.imageBuilder,
    'botBottle.freeze.compression': DEFAULT_SETTINGS.compression,
    'botBottle.freeze.includeMounts': DEFAULT_SETTINGS.includeMounts,
    'botBottle.freeze.incremental': DEFAULT_SETTINGS.incremental,
    'botBottle.shell': DEFAULT_SETTINGS.shell,
    'botBottle.snapshots.keep': DEFAULT_SETTINGS.snapshotsKeep,
    ...Object.fromEntries(Object.entries(DEFAULT_SETTINGS.paths).map(([tool, path]) => [`botBottle.paths.${tool}`, path])),
  };

  it('package.json declares every setting with the default the code uses', () => {
    assert.deepEqual(Object.keys(declared).sort(), Object.keys(fromCode).sort());
    for (const [key, value] of Object.entries(fromCode)) assert.deepEqual(declared[key].default, value, key);
  });
});

describe("the menus' context values do not depend on the order of their flags", () => {
  const menus = JSON.parse(readFileSync('package.json', 'utf8')).contributes.menus['view/item/context'] as Array<{ when: string }>;
  const regexes = menus.flatMap((m) => [...m.when.matchAll(/viewItem =~ \/((?:[^/\\]|\\.)+)\//g)].map((match) => new RegExp(match[1])));

  function orders<T>(items: T[]): T[][] {
    if (items.length <= 1) return [items];
    return items.flatMap((item, i) => orders([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
  }

  it('finds the regexes to test', () => assert.ok(regexes.length >= 10, String(regexes.length)));

  it('every regex gives the same answer for every order of the same flags', () => {
    for (const kind of ['bottle', 'snapshot']) {
      for (const flags of [[], ['running'], ['machine'], ['frozen'], ['busy'], ['running', 'frozen'], ['machine', 'frozen', 'busy'], ['running', 'frozen', 'busy'], ['recorded'], ['docker', 'running'], ['docker', 'container', 'busy'], ['recorded', 'pinned'], ['recorded', 'history'], ['recorded', 'pinned', 'history'], ['history']]) {
        for (const regex of regexes) {
          const answers = new Set(orders(flags).map((order) => regex.test([kind, ...order].join('+'))));
          assert.equal(answers.size, 1, `${regex} on ${kind} with ${flags.join(',')}`);
        }
      }
    }
  });

  it('a snapshot row offers Pin or Unpin as its record says, whichever flag comes last', () => {
    const when = (command: string) => menus.filter((m) => (m as unknown as { command: string }).command === command).map((m) => m.when);
    const matches = (command: string, value: string) => when(command).some((w) => {
      const tests = [...w.matchAll(/(!\()?viewItem =~ \/((?:[^/\\]|\\.)+)\//g)].map((match) => (match[1] ? !new RegExp(match[2]).test(value) : new RegExp(match[2]).test(value)));
      return tests.length > 0 && tests.every(Boolean);
    });
    const older = { slug: 'a', sidecar: '/s', launcher: '/l', sizeBytes: 1, createdAt: new Date(0), historyId: '20261129T100000Z-abcdef' };
    const record: SnapshotRecord = { version: 1, slug: 'a', machine: 'm', createdAt: '', sidecar: '', launcher: '', sidecarBytes: 1, sha256: '', tools: {}, steps: [] };
    const pinned = snapshotContextValue({ ...older, record: { ...record, pinned: true } });
    const unpinned = snapshotContextValue({ ...older, record: { ...record } });
    const bare = snapshotContextValue({ ...older, historyId: undefined });
    assert.deepEqual([pinned, unpinned, bare], ['snapshot+recorded+pinned+history', 'snapshot+recorded+history', 'snapshot']);
    assert.deepEqual([matches('botBottle.pinSnapshot', pinned), matches('botBottle.unpinSnapshot', pinned)], [false, true]);
    assert.deepEqual([matches('botBottle.pinSnapshot', unpinned), matches('botBottle.unpinSnapshot', unpinned)], [true, false]);
    assert.deepEqual([matches('botBottle.pinSnapshot', bare), matches('botBottle.renameSnapshot', bare), matches('botBottle.resume', bare)], [false, false, true], 'no record: nowhere to keep a pin or a name');
  });

  it('a busy running bottle is matched as running and as busy whichever flag comes last', () => {
    const value = bottleContextValue({ slug: 'a', machineName: 'bot-bottle-a', machine: { name: 'bot-bottle-a', state: 'running' } }, true);
    const freeze = menus.find((m) => m.when.includes('running') && m.when.includes('busy'))!;
    const [running, busy] = [...freeze.when.matchAll(/viewItem =~ \/((?:[^/\\]|\\.)+)\//g)].map((match) => new RegExp(match[1]));
    for (const order of orders(value.split('+').slice(1))) {
      const reordered = ['bottle', ...order].join('+');
      assert.ok(running.test(reordered) && busy.test(reordered), reordered);
    }
  });
});
