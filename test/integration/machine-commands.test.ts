// Open Shell and Show Agent Log as the core hands them to VS Code, run through the smolvm stand-in:
// the shell's argv on a pseudo-terminal the stand-in allocates for `-t` as smolvm's agent does
// (crates/smolvm-agent/src/main.rs:6392-6416), and the agent log found through `machine data-dir`
// (src/cli/machine.rs:4557-4569). No containers: these commands use none.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BotBottle, type Bottle } from '../../src/core/facade';
import { MemoryLog } from '../support/memoryLog';
import { createRunningMachine, makeSimDataDir, machineRootfs, runSim, simBin, type SimDataDir } from '../support/sim';

describe('Open Shell and Show Agent Log through the smolvm stand-in', () => {
  let data: SimDataDir;
  let core: BotBottle;
  let restoreDataDir: string | undefined;
  const bottle: Bottle = { slug: 'shell', machineName: 'bot-bottle-shell' };
  const guestFile = (path: string) => join(machineRootfs(data.dataDir, bottle.machineName), path);

  before(async () => {
    data = makeSimDataDir();
    restoreDataDir = process.env.SMOLVM_DATA_DIR;
    process.env.SMOLVM_DATA_DIR = data.dataDir;
    await createRunningMachine(data.dataDir, bottle.machineName, ['--image', 'node:22']);
    core = new BotBottle(
      { paths: { smolvm: simBin, docker: '', crane: '', skopeo: '', registry: '' }, stateDir: join(data.scratch, 'state'), machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1' },
      { main: new MemoryLog(), tools: new MemoryLog() },
    );
  });

  after(() => {
    if (restoreDataDir === undefined) delete process.env.SMOLVM_DATA_DIR;
    else process.env.SMOLVM_DATA_DIR = restoreDataDir;
    data?.cleanup();
  });

  /** Runs Open Shell's argv as a terminal would, typing `typed` (stdin is a pipe: the PTY must be smolvm's). */
  function openShell(shell: string, typed: string) {
    const [bin, ...args] = core.shellArgv(bottle, shell);
    return spawnSync(bin, args, { input: typed, encoding: 'utf8', env: process.env, timeout: 30_000 });
  }

  it('Open Shell runs the configured shell as a login shell on a terminal in the bottle', () => {
    const run = openShell('/bin/bash', 'echo "hi-$((40+2)) $(shopt -q login_shell && echo login) $([ -t 0 ] && echo tty) $TERM" > /tmp/x\nexit 0\n');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(readFileSync(guestFile('tmp/x'), 'utf8'), 'hi-42 login tty xterm-256color\n');
  });

  it('Open Shell falls back to /bin/sh, saying so on the terminal, when the bottle lacks the shell', () => {
    const run = openShell('/usr/bin/zsh', 'echo "fell back to $0 $([ -t 0 ] && echo tty)" > /tmp/y\nexit 0\n');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /\/usr\/bin\/zsh is not in this bottle; using \/bin\/sh\r\n/);
    assert.equal(readFileSync(guestFile('tmp/y'), 'utf8'), 'fell back to /bin/sh tty\n');
  });

  it('Open Shell never runs the shell setting as a command line', () => {
    rmSync(guestFile('tmp/pwned'), { force: true });
    const run = openShell('/bin/bash; touch /tmp/pwned', 'exit 0\n');
    assert.ok(!existsSync(guestFile('tmp/pwned')), 'the text after ; was run in the bottle');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /\/bin\/bash; touch \/tmp\/pwned is not in this bottle; using \/bin\/sh/);
  });

  it("Show Agent Log reads agent-console.log in the folder `machine data-dir` names, which holds the bottle's execs", async () => {
    const path = await core.agentLogPath(bottle);
    const dataDir = (await runSim(['machine', 'data-dir', '--name', bottle.machineName], { dataDir: data.dataDir })).stdout.trim();
    assert.equal(path, join(dataDir, 'agent-console.log'));
    assert.match(readFileSync(path, 'utf8'), /exec: sh -c .*\n.*exec exited with status 0: sh\n/);
  });
});
