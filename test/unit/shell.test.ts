import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { shellArgv } from '../../src/core/shell';
import { SmolvmCli } from '../../src/core/tools/smolvm';

describe('Open Shell: the argv of a login shell in a bottle', () => {
  const argv = (shell: string) => shellArgv(new SmolvmCli('/opt/smolvm'), 'bot-bottle-a', shell);
  /** The guest side (after `--`), run here by the host's sh as the bottle's would run it. */
  const runGuestSide = (shell: string, input = '') => {
    const [sh, ...args] = argv(shell).slice(argv(shell).indexOf('--') + 1);
    return spawnSync(sh, args, { input, encoding: 'utf8' });
  };

  it('asks smolvm for an interactive terminal with TERM set, by --name', () => {
    const full = argv('/bin/bash');
    assert.deepEqual(full.slice(0, full.indexOf('--')), ['/opt/smolvm', 'machine', 'exec', '--name', 'bot-bottle-a', '-i', '-t', '-e', 'TERM=xterm-256color']);
  });

  it('passes the configured shell as an argument, never inside the script', () => {
    const guest = argv('/bin/zsh; touch /tmp/pwned').slice(argv('x').indexOf('--') + 1);
    assert.equal(guest.length, 5);
    assert.deepEqual([guest[0], guest[1], guest[3], guest[4]], ['sh', '-c', 'sh', '/bin/zsh; touch /tmp/pwned']);
    assert.ok(!guest[2].includes('zsh'), guest[2]);
  });

  it('runs the configured shell as a login shell when the bottle has it', () => {
    const run = runGuestSide('/bin/echo');
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, '-l\n');
  });

  it('falls back to /bin/sh, saying so, when the bottle lacks it', () => {
    const run = runGuestSide('/no/such/shell', 'echo fallback-ran\n');
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr.trim(), '/no/such/shell is not in this bottle; using /bin/sh');
    assert.match(run.stdout, /fallback-ran/);
  });
});
