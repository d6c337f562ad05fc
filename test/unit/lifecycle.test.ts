// A bottle's life (start, stop, restart, delete), the rows' text and order, the summary of a
// command run on several bottles, and what the palette and keybindings may offer.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bottle } from '../../src/core/bottles';
import { isFreezePullReference } from '../../src/core/committedImage';
import { changeBottle, lifecycleCommands, LIFECYCLE_ACTIONS } from '../../src/core/lifecycle';
import { Services } from '../../src/core/services';
import { DEFAULT_SETTINGS } from '../../src/core/settings';
import type { Snapshot } from '../../src/core/state';
import { batchSummary, bottleCount } from '../../src/ui/batchSummary';
import { accessibleLabel, lastActivity, relativeTime, rowParts, sortBottles, type Translate } from '../../src/ui/bottleRows';
import { bottleContextKeys } from '../../src/ui/contextValues';
import { MemoryLog } from '../support/memoryLog';

/** vscode.l10n.t without VS Code: fills in {0}, {1}, ... */
const t: Translate = (message, ...args) => message.replace(/\{(\d+)\}/g, (_, i: string) => String(args[Number(i)]));
const EXECUTABLE = '/usr/bin/env';
const NOW = Date.parse('2026-11-30T12:00:00Z');
const minutesAgo = (n: number) => new Date(NOW - n * 60_000);

const snapshot = (slug: string, createdAt: Date): Snapshot => ({ slug, sidecar: `/s/${slug}/x.smolmachine`, launcher: `/s/${slug}/x`, sizeBytes: 1000, createdAt });
const machineBottle = (slug: string, state: string, extra: Partial<NonNullable<Bottle['machine']>> = {}): Bottle => ({
  slug,
  machineName: `bot-bottle-${slug}`,
  machine: { name: `bot-bottle-${slug}`, state, ...extra },
});
const dockerBottle = (slug: string, state: string): Bottle => ({ slug, machineName: `bot-bottle-${slug}`, container: { id: 'c1', name: `bot-bottle-${slug}`, state } });
const frozenOnly = (slug: string, at: Date): Bottle => ({ slug, machineName: `bot-bottle-${slug}`, snapshot: snapshot(slug, at) });

describe("a bottle's life", () => {
  let stateDir: string;
  let services: Services;
  before(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'bb-life-'));
    services = new Services({ ...DEFAULT_SETTINGS, stateDir, paths: { ...DEFAULT_SETTINGS.paths, smolvm: EXECUTABLE, docker: EXECUTABLE } }, { main: new MemoryLog(), tools: new MemoryLog() });
  });
  after(() => rmSync(stateDir, { recursive: true, force: true }));

  const argvs = (bottle: Bottle, action: (typeof LIFECYCLE_ACTIONS)[number]) => lifecycleCommands(services, bottle, action).map((c) => c.argv.slice(1).join(' '));

  it('drives smolvm by --name; a restart is a stop then a start; a delete is one forced delete', () => {
    const api = machineBottle('api', 'running');
    // `machine start|stop -n/--name NAME` (src/cli/machine.rs:3587-3592, :3948-3953); smolvm has no restart.
    assert.deepEqual(argvs(api, 'start'), ['machine start --name bot-bottle-api']);
    assert.deepEqual(argvs(api, 'stop'), ['machine stop --name bot-bottle-api']);
    assert.deepEqual(argvs(api, 'restart'), ['machine stop --name bot-bottle-api', 'machine start --name bot-bottle-api']);
    // `delete --name N [-f]`: -f skips the y/N prompt; a running machine is stopped first by smolvm
    // itself (src/cli/machine.rs:3972-3981, :3996-4001; src/cli/vm_common.rs:2326-2336).
    assert.deepEqual(argvs(api, 'delete'), ['machine delete --name bot-bottle-api -f']);
  });

  it("drives docker for a bottle of bot-bottle's docker backend; a running container is stopped before docker rm", () => {
    const web = dockerBottle('web', 'running');
    assert.deepEqual(argvs(web, 'start'), ['start bot-bottle-web']);
    assert.deepEqual(argvs(web, 'stop'), ['stop bot-bottle-web']);
    assert.deepEqual(argvs(web, 'restart'), ['restart bot-bottle-web']);
    assert.deepEqual(argvs(web, 'delete'), ['stop bot-bottle-web', 'rm bot-bottle-web']);
  });

  it('refuses a bottle that is only a snapshot, before running anything', async () => {
    for (const action of LIFECYCLE_ACTIONS) {
      await assert.rejects(changeBottle(services, frozenOnly('old', minutesAgo(5)), action), /Bottle old has no machine to \w+: it exists only as a snapshot\./);
    }
  });
});

describe("a resumed machine's image: the freeze's pull reference", () => {
  it('is recognised in the shapes the native endpoint and the docker path give smolvm pack create', () => {
    // src/core/oci/endpoint.ts: <pullHost>:<port>/bot-bottle-committed/<32 hex>:<tag>
    assert.ok(isFreezePullReference(`127.0.0.1:41234/bot-bottle-committed/${'ab'.repeat(16)}:latest`));
    // src/core/freeze/steps.ts: <pullHost>:<port>/bot-bottle-committed:<16 hex of the image id>
    assert.ok(isFreezePullReference('host.smolvm.internal:5000/bot-bottle-committed:0123456789abcdef'));
    assert.ok(isFreezePullReference('[::1]:5000/bot-bottle-committed:0123456789abcdef'));
  });

  it('is not any other image', () => {
    for (const image of ['node:22', 'docker.io/library/node:22', 'bot-bottle-committed-api:latest', 'localhost:5000/bot-bottle-committed-api:1', 'registry:5000/other/bot-bottle-committed:1']) {
      assert.equal(isFreezePullReference(image), false, image);
    }
  });
});

describe('rows a person can scan', () => {
  it('say the state, then how long ago, then the image', () => {
    const api = machineBottle('api', 'running', { image: 'node:22', uptimeSeconds: 7200, createdAt: minutesAgo(600) });
    assert.deepEqual(rowParts(api, NOW, NOW, t), ['running', '2 h ago', 'node:22']);
    assert.deepEqual(rowParts(frozenOnly('old', minutesAgo(3 * 24 * 60)), NOW, NOW, t), ['snapshot', '3 d ago']);
    assert.deepEqual(rowParts(machineBottle('new', 'created'), NOW, NOW, t), ['created']);
  });

  it('keep "how long ago" current: uptime counts from when the list was read, not from now', () => {
    const api = machineBottle('api', 'running', { uptimeSeconds: 60 });
    const listedAt = NOW - 10 * 60_000;
    assert.equal(lastActivity(api, listedAt)?.getTime(), listedAt - 60_000);
    assert.deepEqual(rowParts(api, NOW, listedAt, t), ['running', '11 min ago']);
    assert.deepEqual(['just now', '59 min ago', '23 h ago', '1 d ago'], [0.5, 59.9, 23 * 60 + 59, 24 * 60].map((m) => relativeTime(minutesAgo(m), NOW, t)));
  });

  it('name a resumed machine by the snapshot it was made from, not by the address the freeze served it at', () => {
    const served = `127.0.0.1:41234/bot-bottle-committed/${'cd'.repeat(16)}:latest`;
    const frozenAt = new Date(2026, 10, 29, 18, 27);
    const resumed: Bottle = { ...machineBottle('api', 'running', { image: served, createdAt: new Date(frozenAt.getTime() + 3600_000) }), snapshot: snapshot('api', frozenAt) };
    assert.equal(rowParts(resumed, NOW, NOW, t).at(-1), 'from snapshot 2026-11-29 18:27');
    // Frozen again since: the snapshot there now is not the one the machine was made from.
    const refrozen: Bottle = { ...resumed, snapshot: snapshot('api', new Date(NOW)) };
    assert.equal(rowParts(refrozen, NOW, NOW, t).at(-1), 'from a snapshot');
    assert.ok(!rowParts(refrozen, NOW, NOW, t).some((part) => part.includes('127.0.0.1')));
  });

  it('read aloud as the name and every part, in commas', () => {
    const api = machineBottle('api', 'running');
    assert.equal(accessibleLabel(api, ['Fix the login', 'running', '2 h ago']), 'api, Fix the login, running, 2 h ago');
  });

  it('sort by name, or the most recently active first', () => {
    const bottles = [frozenOnly('b', minutesAgo(5)), frozenOnly('a', minutesAgo(50)), machineBottle('c', 'created'), frozenOnly('d', minutesAgo(5))];
    assert.deepEqual(sortBottles(bottles, 'name', NOW).map((b) => b.slug), ['a', 'b', 'c', 'd']);
    assert.deepEqual(sortBottles(bottles, 'activity', NOW).map((b) => b.slug), ['b', 'd', 'a', 'c']);
    assert.deepEqual(bottles.map((b) => b.slug), ['b', 'a', 'c', 'd'], 'the list itself is left as it was');
  });
});

describe('several bottles at once: one summary', () => {
  const froze = (n: number) => `Froze ${bottleCount(n, t)}`;
  it('counts what worked and names each failure with its reason', () => {
    assert.equal(batchSummary([{ slug: 'a' }, { slug: 'b' }], froze, t), 'Froze 2 bottles.');
    assert.equal(batchSummary([{ slug: 'a' }, { slug: 'b', failure: 'smolvm: not running' }], froze, t), 'Froze 1 bottle; 1 failed: b (smolvm: not running).');
    assert.equal(batchSummary([{ slug: 'a', cancelled: true }, { slug: 'b', failure: 'x' }], froze, t), 'Froze 0 bottles; 1 failed: b (x); 1 cancelled: a.');
  });
});

describe('what the palette and keybindings offer', () => {
  const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
  const contributes = manifest.contributes;
  const keysNow = (bottles: Bottle[]): Record<string, string | boolean> => ({ ...bottleContextKeys(bottles), 'botBottle.status': 'ready', 'botBottle.sortBy': 'name' });
  const palette = (command: string): string => contributes.menus.commandPalette.filter((e: { command: string }) => e.command === command).map((e: { when: string }) => e.when).join(' && ');
  const enablement = (command: string): string | undefined => contributes.commands.find((c: { command: string }) => c.command === command).enablement;
  const offered = (command: string, bottles: Bottle[]) => [palette(command), enablement(command)].every((when) => when === undefined || evaluate(when, keysNow(bottles)));

  it('never offers Freeze with nothing running, nor Resume with nothing to resume', () => {
    const stopped = [machineBottle('a', 'stopped')];
    for (const command of ['botBottle.freeze', 'botBottle.freezeAllRunning', 'botBottle.stopBottle', 'botBottle.restartBottle']) {
      assert.equal(offered(command, stopped), false, `${command} with nothing running`);
      assert.equal(offered(command, [machineBottle('a', 'running')]), true, `${command} with a bottle running`);
    }
    assert.equal(offered('botBottle.resume', stopped), false, 'Resume with no snapshot');
    assert.equal(offered('botBottle.resume', [frozenOnly('a', minutesAgo(1))]), true);
    assert.equal(offered('botBottle.startBottle', [machineBottle('a', 'running')]), false);
    assert.equal(offered('botBottle.startBottle', [dockerBottle('w', 'exited')]), true);
    assert.equal(offered('botBottle.deleteBottle', [frozenOnly('a', minutesAgo(1))]), false, 'Delete Bottle deletes machines; a snapshot has its own Delete');
  });

  it('every botBottle.* context key a when clause reads is one the extension sets (one definition), and each one is read', () => {
    const clauses = JSON.stringify([contributes.menus, contributes.commands, contributes.keybindings, contributes.viewsWelcome]).match(/"(when|enablement)":"[^"]*"/g) ?? [];
    const read = new Set(clauses.flatMap((clause) => clause.match(/botBottle\.\w+/g) ?? []).filter((key) => key !== 'botBottle.bottles'));
    const defined = Object.keys(keysNow([]));
    assert.deepEqual([...read].sort(), [...defined].sort());
  });

  it('binds Freeze and Open Shell only while the Bottles view has focus, for the selected rows', () => {
    for (const command of ['botBottle.freeze', 'botBottle.openShell']) {
      const binding = contributes.keybindings.find((k: { command: string }) => k.command === command);
      assert.equal(binding?.when, 'focusedView == botBottle.bottles', command);
      assert.deepEqual(binding?.args, { selection: true }, command);
    }
  });
});

/** The subset of VS Code's when-clause language package.json's palette entries use: keys, !, ==, !=, &&. */
function evaluate(clause: string, context: Record<string, string | boolean>): boolean {
  return clause.split('&&').every((term) => {
    const [, not, key, op, value] = /^\s*(!?)([\w.]+)\s*(?:(==|!=)\s*(\S+))?\s*$/.exec(term) ?? [];
    if (!key) throw new Error(`cannot evaluate "${term}"`);
    const actual = context[key];
    if (op) return (String(actual) === value) === (op === '==');
    return Boolean(actual) !== (not === '!');
  });
}
