/**
 * The bad input catalogue, part 1: inputs that need no real tool (names, paths, settings, tool
 * output, small fake programs). Each case is an input and the exact message a user reads, or for
 * input that is accepted, exactly what is shown. Part 2, with the smolvm stand-in, docker, a
 * registry and mounts, is test/integration/bad-input.test.ts.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning, mergeBottles } from '../../src/core/bottles';
import { MemoryLog } from '../support/memoryLog';
import { machineName, validateSlug } from '../../src/core/names';
import { bindAddressFor } from '../../src/core/pullHost';
import { createRunner } from '../../src/core/run';
import { Services } from '../../src/core/services';
import type { CoreSettings } from '../../src/core/settings';
import { exportSnapshot, importSnapshot } from '../../src/core/snapshots';
import { StateStore, type Snapshot } from '../../src/core/state';
import { parseImageId } from '../../src/core/tools/docker';
import { startEphemeralRegistry } from '../../src/core/freeze/registry';
import { parseMachineList, SmolvmCli } from '../../src/core/tools/smolvm';
import { requireExecutable } from '../../src/core/executables';

const ALLOWED = 'smolvm allows only letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".';

/** What the user sees: the error's message, or (for input that is accepted) the value shown. */
type Expected = { error: string | RegExp } | { shows: string };

interface Case {
  /** The input, as a person would describe it. */
  input: string;
  expected: Expected;
  /** Throws for refused input; returns what is shown for accepted input. */
  act(): unknown;
  /** Checks after the message: nothing lost, nothing left behind. */
  after?(): void | Promise<void>;
}

let scratch: string;
const cleanups: Array<() => void> = [];

function services(overrides: Partial<CoreSettings> = {}): Services {
  const log = new MemoryLog();
  return new Services(
    { paths: { smolvm: '', docker: '', crane: '', skopeo: '', registry: '' }, stateDir: join(scratch, 'state'), machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1', ...overrides },
    { main: log, tools: log },
  );
}

/** An executable script in the scratch folder. */
function script(name: string, body: string, mode = 0o755): string {
  const path = join(scratch, 'bin', name);
  mkdirSync(join(scratch, 'bin'), { recursive: true });
  writeFileSync(path, body);
  chmodSync(path, mode);
  return path;
}

/** A stand-in smolvm that answers `machine ls --json` with `output`. */
function smolvmPrinting(name: string, output: string): string {
  return script(name, `#!/bin/sh\nprintf '%s' '${output.replace(/'/g, `'\\''`)}'\n`);
}

/** A frozen bottle `slug` in the scratch state folder, with a launcher and a footer that passes. */
async function frozen(slug: string): Promise<Snapshot> {
  const store = new StateStore(join(scratch, 'state'));
  await store.ensureBottleDir(slug);
  writeFileSync(store.sidecarPath(slug), Buffer.concat([Buffer.alloc(100, 7), Buffer.from('SMOLPACK'), Buffer.alloc(56)]));
  writeFileSync(store.launcherPath(slug), '#!/bin/sh\n');
  return (await store.readSnapshot(slug))!;
}

const slugCase = (input: string, slug: string, error: string): Case => ({ input, expected: { error }, act: () => validateSlug(slug) });

const CASES: Case[] = [
  // -- bottle and machine names smolvm refuses --------------------------------------------------
  slugCase('bottle name of 118 characters (machine name 129)', 'x'.repeat(118),
    `Bottle name "${'x'.repeat(118)}" is too long: with the prefix "bot-bottle-" the machine name would be 129 characters long, and smolvm allows at most 128. Use at most 117 characters.`),
  slugCase('bottle name with a leading hyphen', '-x', 'Bottle name "-x" cannot be used: Machine name "bot-bottle--x" must not contain "--".'),
  slugCase('bottle name with "--"', 'a--b', 'Bottle name "a--b" cannot be used: Machine name "bot-bottle-a--b" must not contain "--".'),
  slugCase('bottle name ending in a hyphen', 'ab-', 'Bottle name "ab-" cannot be used: Machine name "bot-bottle-ab-" must not end in "-".'),
  slugCase('bottle name with a space', 'my bottle', `Bottle name "my bottle" cannot be used: Machine name "bot-bottle-my bottle" contains a space; ${ALLOWED}`),
  slugCase('bottle name with an accented letter', 'café', `Bottle name "café" cannot be used: Machine name "bot-bottle-café" contains "é"; ${ALLOWED}`),
  slugCase('bottle name with an emoji', 'bottle🍾', `Bottle name "bottle🍾" cannot be used: Machine name "bot-bottle-bottle🍾" contains "🍾"; ${ALLOWED}`),
  slugCase('bottle name with $(...)', '$(reboot)', `Bottle name "$(reboot)" cannot be used: Machine name "bot-bottle-$(reboot)" contains "$"; ${ALLOWED}`),
  slugCase('bottle name with ";"', 'a;rm -rf ~', `Bottle name "a;rm -rf ~" cannot be used: Machine name "bot-bottle-a;rm -rf ~" contains ";"; ${ALLOWED}`),
  slugCase('bottle name with backticks', '`id`', `Bottle name "\`id\`" cannot be used: Machine name "bot-bottle-\`id\`" contains "\`"; ${ALLOWED}`),
  slugCase('bottle name with a pipe', 'a|b', `Bottle name "a|b" cannot be used: Machine name "bot-bottle-a|b" contains "|"; ${ALLOWED}`),
  slugCase('bottle name with "&"', 'a&b', `Bottle name "a&b" cannot be used: Machine name "bot-bottle-a&b" contains "&"; ${ALLOWED}`),
  slugCase('bottle name with a newline', 'a\nb', `Bottle name "a\nb" cannot be used: Machine name "bot-bottle-a\nb" contains a control character (U+000A); ${ALLOWED}`),
  slugCase('bottle name that is a path', '../etc', `Bottle name "../etc" cannot be used: Machine name "bot-bottle-../etc" contains "."; ${ALLOWED}`),
  slugCase('empty bottle name', '', 'Bottle name is empty.'),
  {
    input: 'machine name of 129 characters given to smolvm machine status',
    expected: { error: 'Machine name is 129 characters long; smolvm allows at most 128.' },
    act: () => new SmolvmCli('smolvm').status('m'.repeat(129)),
  },
  {
    input: 'machine prefix setting "bad prefix"',
    expected: { error: `Machine prefix "bad prefix" is not usable: use letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".` },
    act: () => services({ machinePrefix: 'bad prefix' }),
  },
  {
    input: 'bottle name "-x" under the prefix "bb" (no hyphen) is fine',
    expected: { shows: 'bb-x' },
    act: () => machineName('-x', 'bb'),
  },

  // -- host paths ---------------------------------------------------------------------------------
  {
    input: 'host path with ":" for smolvm machine cp',
    expected: { error: 'The path "/tmp/a:b/rootfs.tar.gz" contains ":", which smolvm machine cp would read as a machine name. Choose a folder without ":".' },
    act: () => new SmolvmCli('smolvm').cp({ machine: 'bot-bottle-a', path: '/var/tmp/x' }, { host: '/tmp/a:b/rootfs.tar.gz' }),
  },
  {
    input: 'pack output ending in .smolmachine',
    expected: { error: 'The pack output "/s/out.smolmachine" must not end in .smolmachine: smolvm adds it to the artifact.' },
    act: () => new SmolvmCli('smolvm').packCreate({ image: '127.0.0.1:5000/x:1', output: '/s/out.smolmachine' }),
  },
  {
    input: 'export target that is a folder ("/exports/")',
    expected: { error: '"/exports/" does not name a file to export to.' },
    act: async () => exportSnapshot(await frozen('folder-target'), '/exports/'),
  },
  {
    input: 'export target that is only ".smolmachine"',
    expected: { error: '".smolmachine" does not name a file to export to.' },
    act: async () => exportSnapshot(await frozen('bare-suffix'), '.smolmachine'),
  },
  {
    input: 'export target that is the snapshot itself',
    expected: { error: /^\/.+\/state\/self\/committed-smolmachine\.smolmachine is the snapshot of self itself: choose another place to export to\. Nothing was exported\.$/ },
    act: async () => {
      const snapshot = await frozen('self');
      return exportSnapshot(snapshot, snapshot.launcher);
    },
    after: () => assert.equal(readFileSync(join(scratch, 'state/self/committed-smolmachine.smolmachine')).length, 164, 'the snapshot is whole'),
  },
  {
    input: 'export target in a folder that does not exist',
    expected: { error: /^Could not export the snapshot of nowhere to \/.+\/missing folder\/x\.smolmachine: the file or folder does not exist \(ENOENT\)\. Nothing was exported\.$/ },
    act: async () => exportSnapshot(await frozen('nowhere'), join(scratch, 'missing folder', 'x')),
  },
  {
    input: 'export target with spaces, ":" and unicode',
    expected: { shows: 'sidecar: out: ünï cödé/bottle: 1.smolmachine, launcher: out: ünï cödé/bottle: 1' },
    act: async () => {
      const dir = join(scratch, 'out: ünï cödé');
      mkdirSync(dir);
      const files = await exportSnapshot(await frozen('odd-target'), join(dir, 'bottle: 1'));
      assert.deepEqual(readFileSync(files.sidecar), readFileSync(join(scratch, 'state/odd-target/committed-smolmachine.smolmachine')));
      return `sidecar: ${files.sidecar.slice(scratch.length + 1)}, launcher: ${files.launcher!.slice(scratch.length + 1)}`;
    },
  },

  // -- .smolmachine files that are not ----------------------------------------------------------
  {
    input: 'import a text file named .smolmachine',
    expected: { error: /^\/.+\/notes\.smolmachine is not a \.smolmachine file \(its footer has no SMOLPACK magic\)\. Nothing was imported\.$/ },
    act: async () => {
      const path = join(scratch, 'notes.smolmachine');
      writeFileSync(path, 'just some notes, not a machine\n'.repeat(10));
      return importSnapshot(new StateStore(join(scratch, 'state')), path, 'notes');
    },
    after: () => assert.ok(!existsSync(join(scratch, 'state/notes')), 'no state folder was made'),
  },
  {
    input: 'import a file too small to be a .smolmachine',
    expected: { error: /^\/.+\/tiny\.smolmachine is too small to be a \.smolmachine file\. Nothing was imported\.$/ },
    act: async () => {
      const path = join(scratch, 'tiny.smolmachine');
      writeFileSync(path, 'SMOLPACK');
      return importSnapshot(new StateStore(join(scratch, 'state')), path, 'tiny');
    },
  },
  {
    input: 'import a file that does not exist',
    expected: { error: /^\/.+\/gone\.smolmachine does not exist\. Nothing was imported\.$/ },
    act: () => importSnapshot(new StateStore(join(scratch, 'state')), join(scratch, 'gone.smolmachine'), 'gone'),
  },
  {
    input: 'import a folder named .smolmachine',
    expected: { error: /^\/.+\/dir\.smolmachine is a folder, not a \.smolmachine file\. Nothing was imported\.$/ },
    act: () => {
      mkdirSync(join(scratch, 'dir.smolmachine'));
      return importSnapshot(new StateStore(join(scratch, 'state')), join(scratch, 'dir.smolmachine'), 'dir');
    },
  },
  {
    input: 'import under a bottle name with a space',
    expected: { error: `Bottle name "my import" cannot be used: Machine name "bot-bottle-my import" contains a space; ${ALLOWED}` },
    act: async () => importSnapshot(new StateStore(join(scratch, 'state')), (await frozen('source')).sidecar, 'my import'),
  },
  {
    input: 'import over a bottle that already has a snapshot',
    expected: { error: 'Bottle "taken" already has a snapshot, so nothing was imported. Import under another name, or replace that snapshot.' },
    act: async () => {
      const source = await frozen('source2');
      await frozen('taken');
      return importSnapshot(new StateStore(join(scratch, 'state')), source.sidecar, 'taken');
    },
    after: () => assert.equal(readFileSync(join(scratch, 'state/taken/committed-smolmachine')).toString(), '#!/bin/sh\n', 'the old snapshot is kept'),
  },

  // -- tool paths ---------------------------------------------------------------------------------
  {
    input: 'botBottle.paths.smolvm pointing at nothing',
    expected: { error: 'botBottle.paths.smolvm is set to "/nonexistent/smolvm", but that does not exist.' },
    act: () => services({ paths: { smolvm: '/nonexistent/smolvm', docker: '', crane: '', skopeo: '', registry: '' } }).smolvm(),
  },
  {
    input: 'botBottle.paths.smolvm pointing at a file that is not executable',
    expected: { error: /^botBottle\.paths\.smolvm is set to "\/.+\/bin\/smolvm-noexec", but that is not executable\.$/ },
    act: () => services({ paths: { smolvm: script('smolvm-noexec', '#!/bin/sh\n', 0o644), docker: '', crane: '', skopeo: '', registry: '' } }).smolvm(),
  },
  {
    input: 'botBottle.paths.smolvm pointing at a folder',
    expected: { error: /^botBottle\.paths\.smolvm is set to "\/.+", but that is not a file\.$/ },
    act: () => services({ paths: { smolvm: scratch, docker: '', crane: '', skopeo: '', registry: '' } }).smolvm(),
  },
  {
    input: 'botBottle.paths.smolvm as a relative path',
    expected: { error: 'botBottle.paths.smolvm is set to "bin/smolvm": use an absolute path, or a program name found on PATH.' },
    act: () => services({ paths: { smolvm: 'bin/smolvm', docker: '', crane: '', skopeo: '', registry: '' } }).smolvm(),
  },
  {
    input: 'botBottle.paths.smolvm naming a program that is not on PATH',
    expected: { error: 'botBottle.paths.smolvm is set to "smolvm-that-is-not-installed", but no program of that name is on PATH.' },
    act: () => services({ paths: { smolvm: 'smolvm-that-is-not-installed', docker: '', crane: '', skopeo: '', registry: '' } }).smolvm(),
  },
  {
    input: 'no smolvm setting and no smolvm on PATH',
    expected: { error: 'smolvm was not found on PATH. Install it, or set botBottle.paths.smolvm to its full path.' },
    act: () => requireExecutable('smolvm', '', join(scratch, 'empty-path')),
  },
  {
    input: 'no registry setting and no registry on PATH',
    expected: { error: 'registry or docker-registry was not found on PATH. Install it, or set botBottle.paths.registry to its full path.' },
    act: () => requireExecutable('registry', '  ', join(scratch, 'empty-path')),
  },
  {
    input: 'a tool that vanished between lookup and start',
    expected: { error: /^\/.+\/bin\/vanished was not found\. Install it or set its path in the Bot Bottle settings\.$/ },
    act: async () => {
      const path = script('vanished', '#!/bin/sh\n');
      rmSync(path);
      return createRunner(new MemoryLog())([path, 'machine', 'ls']);
    },
  },
  {
    input: 'a tool whose execute permission was removed after lookup',
    expected: { error: /^\/.+\/bin\/noexec-now is not executable\. Check its path in the Bot Bottle settings\.$/ },
    act: () => createRunner(new MemoryLog())([script('noexec-now', '#!/bin/sh\n', 0o644), '--version']),
  },

  // -- tool output that makes no sense ----------------------------------------------------------
  {
    input: 'smolvm machine ls printing a greeting instead of JSON (a real program)',
    expected: { error: 'smolvm machine ls printed output this extension cannot read: expected JSON but got "hello, world". Is botBottle.paths.smolvm a real smolvm?' },
    act: () => services({ paths: { smolvm: smolvmPrinting('smolvm-hello', 'hello, world\n'), docker: '', crane: '', skopeo: '', registry: '' } }).catalog.refresh(),
  },
  {
    input: 'smolvm machine ls printing nothing (a real program)',
    expected: { error: 'smolvm machine ls printed output this extension cannot read: expected JSON but got "nothing". Is botBottle.paths.smolvm a real smolvm?' },
    act: () => services({ paths: { smolvm: smolvmPrinting('smolvm-empty', ''), docker: '', crane: '', skopeo: '', registry: '' } }).catalog.refresh(),
  },
  {
    input: 'smolvm machine ls printing truncated JSON (a real program)',
    expected: { error: 'smolvm machine ls printed output this extension cannot read: expected JSON but got "[{\\"name\\": \\"bot-bottle-a\\", \\"sta". Is botBottle.paths.smolvm a real smolvm?' },
    act: () => services({ paths: { smolvm: smolvmPrinting('smolvm-cut', '[{"name": "bot-bottle-a", "sta'), docker: '', crane: '', skopeo: '', registry: '' } }).catalog.refresh(),
  },
  {
    input: 'smolvm machine ls printing a JSON object instead of an array',
    expected: { error: 'smolvm machine ls printed output this extension cannot read: expected a JSON array of machines. Is botBottle.paths.smolvm a real smolvm?' },
    act: () => parseMachineList('{"machines": []}'),
  },
  {
    input: 'smolvm machine ls listing a machine without a name',
    expected: { error: 'smolvm machine ls printed output this extension cannot read: a machine has no name. Is botBottle.paths.smolvm a real smolvm?' },
    act: () => parseMachineList('[{"state": "running"}]'),
  },
  {
    input: 'smolvm machine status printing a JSON string instead of a machine',
    expected: { error: 'smolvm machine status printed output this extension cannot read: expected a JSON object describing a machine. Is botBottle.paths.smolvm a real smolvm?' },
    act: () => new SmolvmCli('smolvm').status('bot-bottle-a').parse({ exitCode: 0, stdout: '"running"\n', stderr: '' }),
  },
  {
    input: 'smolvm exec whose guest status is accepted but smolvm itself failed (Error: line)',
    expected: { error: 'smolvm exited with status 1: Error: agent operation failed: exec: machine \'bot-bottle-a\' is busy' },
    act: () => new SmolvmCli('/usr/bin/smolvm').exec('bot-bottle-a', ['tar', '-c', '.'], { okExitCodes: [0, 1] })
      .parse({ exitCode: 1, stdout: '', stderr: "Error: agent operation failed: exec: machine 'bot-bottle-a' is busy\n" }),
  },
  {
    input: 'a machine in a state this extension does not know ("paused")',
    expected: { shows: 'state paused, running: false' },
    act: () => {
      const [bottle] = mergeBottles(parseMachineList('[{"name": "bot-bottle-odd", "state": "paused"}]'), [], 'bot-bottle-');
      return `state ${bottle.machine!.state}, running: ${isRunning(bottle)}`;
    },
  },
  {
    input: 'a machine with no state at all',
    expected: { shows: 'state unknown' },
    act: () => `state ${parseMachineList('[{"name": "bot-bottle-odd", "state": ""}]')[0].state}`,
  },
  {
    input: 'docker image inspect printing garbage',
    expected: { error: 'docker image inspect printed "<none>" where an image id (sha256:...) was expected' },
    act: () => parseImageId('<none>\n'),
  },

  // -- botBottle.registry.pullHost ---------------------------------------------------------------
  {
    input: 'pull host with a scheme and port ("http://10.0.0.1:5000")',
    expected: { error: 'botBottle.registry.pullHost must be a host name or address without scheme or port, not "http://10.0.0.1:5000".' },
    act: () => bindAddressFor('http://10.0.0.1:5000'),
  },
  {
    input: 'pull host with a space, given to the registry',
    expected: { error: 'botBottle.registry.pullHost must be a host name or address without scheme or port, not "my host".' },
    act: () => startEphemeralRegistry({ registryBin: '/nonexistent/registry', log: new MemoryLog(), pullHost: 'my host' }),
  },
  {
    input: 'pull host 0.0.0.0 (every network)',
    expected: { error: 'botBottle.registry.pullHost must name one address, not "0.0.0.0" (every network).' },
    act: () => bindAddressFor('0.0.0.0'),
  },
  {
    input: 'pull host [::] (every network)',
    expected: { error: 'botBottle.registry.pullHost must name one address, not "[::]" (every network).' },
    act: () => bindAddressFor('[::]'),
  },

  // -- the bottle's lock --------------------------------------------------------------------------
  {
    input: 'a freeze while a window on another host holds the bottle',
    expected: { error: /^A freeze of bottle "shared" is already running \(by process 4242 on other-host, since 2026-11-29T10:00:00\.000Z\)\. Wait for it to finish\. If nothing runs on other-host any more, delete \/.+\/state\/shared\/\.bot-bottle\.lock\.$/ },
    act: async () => {
      const store = new StateStore(join(scratch, 'state'));
      await store.ensureBottleDir('shared');
      writeFileSync(join(store.bottleDir('shared'), '.bot-bottle.lock'), JSON.stringify({ pid: 4242, host: 'other-host', operation: 'freeze', since: '2026-11-29T10:00:00.000Z' }));
      return store.lock('shared', 'resume');
    },
    after: () => assert.match(readFileSync(join(scratch, 'state/shared/.bot-bottle.lock'), 'utf8'), /"other-host"/, 'the other window keeps its lock'),
  },
  {
    input: 'a second freeze of the same bottle in this window',
    expected: { error: /^A freeze of bottle "twice" is already running \(in this window, since \d{4}-\d\d-\d\dT[\d:.]+Z\)\. Wait for it to finish\.$/ },
    act: async () => {
      const store = new StateStore(join(scratch, 'state'));
      const first = await store.lock('twice', 'freeze');
      cleanups.push(() => void first.release());
      return store.lock('twice', 'freeze');
    },
  },
  {
    input: 'a lock left by a process of this host that is gone (taken over)',
    expected: { shows: `lock taken by ${process.pid} on ${hostname()}` },
    act: async () => {
      const store = new StateStore(join(scratch, 'state'));
      await store.ensureBottleDir('stale');
      writeFileSync(join(store.bottleDir('stale'), '.bot-bottle.lock'), JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), operation: 'freeze', since: '2026-01-01T00:00:00.000Z' }));
      const lock = await store.lock('stale', 'freeze');
      await lock.release();
      return `lock taken by ${lock.owner.pid} on ${lock.owner.host}`;
    },
  },
  {
    input: 'a lock file holding garbage (taken over)',
    expected: { shows: 'lock taken: freeze' },
    act: async () => {
      const store = new StateStore(join(scratch, 'state'));
      await store.ensureBottleDir('garbled');
      writeFileSync(join(store.bottleDir('garbled'), '.bot-bottle.lock'), '{"pid": 12');
      const lock = await store.lock('garbled', 'freeze');
      await lock.release();
      assert.deepEqual(readdirSync(store.bottleDir('garbled')), [], 'no lock or temp file left');
      return `lock taken: ${lock.owner.operation}`;
    },
  },
];

/** Counts across the catalogue, printed at the end. */
const tally = { tried: 0, passed: 0 };

describe('bad input catalogue (no real tools)', function () {
  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'bad input ünï: '));
    mkdirSync(join(scratch, 'empty-path'));
  });
  after(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    rmSync(scratch, { recursive: true, force: true });
    console.log(`\n  bad input: ${tally.tried} cases, ${tally.passed} passed (no real tools)\n`);
  });

  it('has at least 30 cases, each with a distinct input', () => {
    assert.ok(CASES.length >= 30, `${CASES.length} cases`);
    assert.equal(new Set(CASES.map((c) => c.input)).size, CASES.length);
  });

  for (const testCase of CASES) {
    it(testCase.input, async () => {
      tally.tried++;
      await check(testCase);
      tally.passed++;
    });
  }
});

/** Runs a case and compares what the user would read with what the catalogue says. */
async function check(testCase: Case): Promise<void> {
  let outcome: { error: Error } | { value: unknown };
  try {
    outcome = { value: await testCase.act() };
  } catch (error) {
    outcome = { error: error as Error };
  }
  // BAD_INPUT_VERBOSE=1 prints the catalogue: each input and what the user reads.
  if (process.env.BAD_INPUT_VERBOSE) console.log(`      ${testCase.input}\n        → ${'error' in outcome ? outcome.error.message : String(outcome.value)}`);
  if ('error' in testCase.expected) {
    assert.ok('error' in outcome, `expected a refusal, but it was accepted: ${String((outcome as { value: unknown }).value)}`);
    const expected = testCase.expected.error;
    if (typeof expected === 'string') assert.equal(outcome.error.message, expected);
    else {
      assert.ok(expected.source.startsWith('^') && expected.source.endsWith('$'), 'a message pattern is anchored at both ends');
      assert.match(outcome.error.message, expected);
    }
    assert.ok(!/\bat .+\.ts:\d+/.test(outcome.error.message), 'no stack trace in a message');
  } else {
    if ('error' in outcome) throw outcome.error;
    assert.equal(outcome.value, testCase.expected.shows);
  }
  await testCase.after?.();
}
