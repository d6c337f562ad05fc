import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendOf, isRunning, mergeBottles } from '../../src/core/bottles';
import {
  BotBottleState,
  type BotBottleEntry,
  botBottleSlugProblem,
  botBottleStateRoot,
  METADATA_MAX_BYTES,
  parseMetadata,
} from '../../src/core/botBottleState';
import type { Snapshot } from '../../src/core/state';

/** A snapshot of ours as the state store hands it over: launcher and sidecar in a folder of their own. */
function snapshotIn(dir: string, slug: string, content = 'image bytes SMOLPACK'): Snapshot {
  mkdirSync(dir, { recursive: true });
  const launcher = join(dir, 'committed-smolmachine');
  writeFileSync(launcher, '#!launcher');
  writeFileSync(`${launcher}.smolmachine`, content);
  return { slug, sidecar: `${launcher}.smolmachine`, launcher, sizeBytes: content.length, createdAt: new Date() };
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe("bot-bottle's own state folders", () => {
  let home: string;
  let root: string;
  let state: BotBottleState;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'bb home '));
    root = botBottleStateRoot(home);
    state = new BotBottleState(root);
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  const bottleDir = (slug: string) => {
    const dir = join(root, slug);
    mkdirSync(dir, { recursive: true });
    return dir;
  };

  it('lives at ~/.bot-bottle/state', () => {
    assert.equal(botBottleStateRoot('/home/u'), '/home/u/.bot-bottle/state');
  });

  it('knows the slugs bot-bottle makes, and says why others are not', () => {
    for (const slug of ['fix-login-4k2x9', 'a', 'claude-code-00000']) assert.equal(botBottleSlugProblem(slug), undefined, slug);
    const rule = 'its names are lower-case letters and digits, in groups joined by single hyphens.';
    assert.equal(botBottleSlugProblem('Fix-Login'), `"Fix-Login" is not a name bot-bottle gives a bottle: ${rule}`);
    for (const slug of ['a--b', '-a', 'a-', 'a_b', 'a.b', '']) assert.equal(botBottleSlugProblem(slug), `"${slug}" is not a name bot-bottle gives a bottle: ${rule}`);
    assert.match(botBottleSlugProblem('x'.repeat(130)) ?? '', /is too long/);
  });

  it('reads the metadata keys bot-bottle writes, of their types only, and nothing else', () => {
    assert.deepEqual(
      parseMetadata({
        backend: 'smolmachines', agent_name: 'claude', label: 'Fix login', color: '#f00', cwd: '/work/app', copy_cwd: true,
        started_at: '2026-03-01T09:30:00Z', compose_project: 'bot-bottle-x', bottle_names: ['a', 3, 'b'], unknown: 'ignored',
      }),
      {
        backend: 'smolmachines', agentName: 'claude', label: 'Fix login', color: '#f00', cwd: '/work/app', copyCwd: true,
        startedAt: new Date('2026-03-01T09:30:00Z'), composeProject: 'bot-bottle-x', bottleNames: ['a', 'b'],
      },
    );
    assert.deepEqual(parseMetadata({ backend: '' }), { backend: 'docker' });
    assert.deepEqual(parseMetadata({ backend: 'vmware', label: 7, started_at: 'yesterday', copy_cwd: 'yes', bottle_names: 'a' }), {});
  });

  it('lists what bot-bottle knows, tolerating missing files and passing over names it never makes', async () => {
    assert.deepEqual(await state.list(), { entries: [], problems: [] }, 'no ~/.bot-bottle at all');
    writeFileSync(join(bottleDir('with-label'), 'metadata.json'), JSON.stringify({ label: 'Fix login', backend: 'smolmachines', cwd: '/w' }));
    bottleDir('bare');
    bottleDir('Not_Ours');
    const listing = await state.list();
    assert.deepEqual(listing.entries.map((e) => [e.slug, e.metadata, e.problems]), [
      ['bare', {}, []],
      ['with-label', { label: 'Fix login', backend: 'smolmachines', cwd: '/w' }, []],
    ]);
    assert.deepEqual(listing.problems, [
      `${join(root, 'Not_Ours')} is passed over: "Not_Ours" is not a name bot-bottle gives a bottle: its names are lower-case letters and digits, in groups joined by single hyphens.`,
    ]);
  });

  describe('bad metadata.json: reported, and the bottle still listed', () => {
    const cases: Array<[string, string | Buffer, (path: string) => string]> = [
      ['garbage', '{"label": "x",', (p) => `${p} is not JSON; what it says is not shown.`],
      ['a list', '["label"]', (p) => `${p} holds a list, not an object; what it says is not shown.`],
      ['a string', '"label"', (p) => `${p} holds a string, not an object; what it says is not shown.`],
      ['null', 'null', (p) => `${p} holds null, not an object; what it says is not shown.`],
      ['huge', Buffer.alloc(METADATA_MAX_BYTES + 1, 0x20), (p) => `${p} is ${METADATA_MAX_BYTES + 1} bytes, more than the ${METADATA_MAX_BYTES} bot-bottle would write; it is not read.`],
    ];
    for (const [name, content, message] of cases) {
      it(name, async () => {
        const path = join(bottleDir('odd'), 'metadata.json');
        writeFileSync(path, content);
        const entry = await state.read('odd');
        assert.deepEqual(entry?.metadata, {});
        assert.deepEqual(entry?.problems, [message(path)]);
      });
    }

    it('a folder in its place', async () => {
      const path = join(bottleDir('odd'), 'metadata.json');
      mkdirSync(path);
      assert.deepEqual((await state.read('odd'))?.problems, [`${path} is not a file; it is not read.`]);
    });
  });

  describe('a state folder bot-bottle could not have made', () => {
    it('is a file', async () => {
      mkdirSync(root, { recursive: true });
      writeFileSync(join(root, 'plain'), 'x');
      const message = `bot-bottle's folder for "plain", ${join(root, 'plain')}, is not a folder; it is not used.`;
      await assert.rejects(state.read('plain'), { message });
      assert.deepEqual(await state.list(), { entries: [], problems: [message] });
    });

    it('is a symbolic link leading out of ~/.bot-bottle', async () => {
      const outside = mkdtempSync(join(tmpdir(), 'bb elsewhere '));
      try {
        writeFileSync(join(outside, 'metadata.json'), '{"label":"stolen"}');
        mkdirSync(root, { recursive: true });
        symlinkSync(outside, join(root, 'leak'));
        const message = `bot-bottle's folder for "leak", ${join(root, 'leak')}, is a symbolic link to ${outside}, outside ${join(home, '.bot-bottle')}; it is not used.`;
        await assert.rejects(state.read('leak'), { message });
        await assert.rejects(state.leaveSnapshot(snapshotIn(join(home, 'ours'), 'leak')), { message });
        assert.deepEqual(readdirSync(outside), ['metadata.json'], 'nothing was written through the link');
      } finally {
        rmSync(outside, { recursive: true, force: true });
      }
    });

    it('a symbolic link that stays inside ~/.bot-bottle is followed', async () => {
      const real = join(home, '.bot-bottle', 'elsewhere', 'inner');
      mkdirSync(real, { recursive: true });
      writeFileSync(join(real, 'metadata.json'), '{"label":"kept"}');
      mkdirSync(root, { recursive: true });
      symlinkSync(real, join(root, 'inner'));
      assert.deepEqual((await state.read('inner'))?.metadata, { label: 'kept' });
    });
  });

  describe('committed-image', () => {
    it('naming a .smolmachine in the folder makes it a snapshot to resume', async () => {
      const dir = bottleDir('done');
      writeFileSync(join(dir, 'committed-smolmachine.smolmachine'), 'packed SMOLPACK');
      writeFileSync(join(dir, 'committed-image'), `${join(dir, 'committed-smolmachine.smolmachine')}\n`);
      const entry = await state.read('done');
      assert.deepEqual(entry?.problems, []);
      assert.equal(entry?.committed?.sidecar, join(dir, 'committed-smolmachine.smolmachine'));
      assert.equal(entry?.committed?.launcher, join(dir, 'committed-smolmachine'));
      assert.equal(entry?.committed?.sizeBytes, 15);
      assert.equal(entry?.committed?.record, undefined);
    });

    it('naming a docker tag is kept as the tag', async () => {
      writeFileSync(join(bottleDir('docked'), 'committed-image'), 'bot-bottle-committed-docked:latest\n');
      const entry = await state.read('docked');
      assert.equal(entry?.committedTag, 'bot-bottle-committed-docked:latest');
      assert.equal(entry?.committed, undefined);
    });

    it('naming a missing file', async () => {
      const dir = bottleDir('gone');
      const named = join(dir, 'committed-smolmachine.smolmachine');
      writeFileSync(join(dir, 'committed-image'), named);
      const entry = await state.read('gone');
      assert.equal(entry?.committed, undefined);
      assert.deepEqual(entry?.problems, [`${join(dir, 'committed-image')} names ${named}, which does not exist.`]);
    });

    it('naming a path outside the bottle’s folder, directly or through a link', async () => {
      const dir = bottleDir('away');
      const elsewhere = join(home, 'secret.smolmachine');
      writeFileSync(elsewhere, 'SMOLPACK');
      const outside = (named: string) => `${join(dir, 'committed-image')} names ${named}, which is outside ${dir}; bot-bottle's commit never writes there, so it is not offered for resume.`;
      for (const named of [elsewhere, join(dir, '..', '..', '..', 'secret.smolmachine')]) {
        writeFileSync(join(dir, 'committed-image'), named);
        const entry = await state.read('away');
        assert.equal(entry?.committed, undefined);
        assert.deepEqual(entry?.problems, [outside(named)]);
      }
      symlinkSync(elsewhere, join(dir, 'sneaky.smolmachine'));
      writeFileSync(join(dir, 'committed-image'), join(dir, 'sneaky.smolmachine'));
      assert.deepEqual((await state.read('away'))?.problems, [outside(join(dir, 'sneaky.smolmachine'))]);
    });
  });

  describe("leaving a committed docker image for bot-bottle", () => {
    it('writes committed-image naming the tag, then .preserve, and touches nothing else', async () => {
      const dir = bottleDir('web-3k9zz');
      const metadata = Buffer.from('{"backend": "docker", "label": "Web"}');
      writeFileSync(join(dir, 'metadata.json'), metadata);
      await state.leaveCommittedTag('web-3k9zz', 'bot-bottle-committed-web-3k9zz:latest');
      assert.equal(readFileSync(join(dir, 'committed-image'), 'utf8'), 'bot-bottle-committed-web-3k9zz:latest');
      assert.deepEqual(readdirSync(dir).sort(), ['.preserve', 'committed-image', 'metadata.json']);
      assert.deepEqual(readFileSync(join(dir, 'metadata.json')), metadata);
      assert.deepEqual([mode(join(dir, 'committed-image')), mode(join(dir, '.preserve'))], [0o600, 0o600]);
      const entry = await state.read('web-3k9zz');
      assert.equal(entry?.committedTag, 'bot-bottle-committed-web-3k9zz:latest');
      assert.equal(entry?.committed, undefined);
    });

    it('writes no .preserve when committed-image cannot be written', async () => {
      const dir = bottleDir('stuck');
      mkdirSync(join(dir, 'committed-image', 'in the way'), { recursive: true });
      await assert.rejects(state.leaveCommittedTag('stuck', 'bot-bottle-committed-stuck:latest'), /^UserError: Cannot write .*committed-image: /);
      assert.deepEqual(readdirSync(dir), ['committed-image']);
    });

    it('refuses a slug bot-bottle would never make, and a tag that is a path or holds a line break', async () => {
      await assert.rejects(state.leaveCommittedTag('Odd_1', 'x:1'), {
        message: '"Odd_1" is not a name bot-bottle gives a bottle: its names are lower-case letters and digits, in groups joined by single hyphens.',
      });
      await assert.rejects(state.leaveCommittedTag('a', '/tmp/x'), { message: '"/tmp/x" is not an image tag committed-image can name.' });
      await assert.rejects(state.leaveCommittedTag('a', 'x:1\n/tmp/y'), { message: '"x:1\n/tmp/y" is not an image tag committed-image can name.' });
      assert.deepEqual(readdirSync(home), []);
    });
  });

  describe('leaving a snapshot of ours for bot-bottle', () => {
    it('links launcher and sidecar, then writes committed-image and .preserve, and touches nothing else', async () => {
      const dir = bottleDir('fix-1');
      const metadata = Buffer.from('{"label": "Fix", "unknown": [1, 2]}   \n');
      writeFileSync(join(dir, 'metadata.json'), metadata);
      mkdirSync(join(dir, 'transcript'));
      writeFileSync(join(dir, 'transcript', 'log'), 'words');
      const ours = snapshotIn(join(home, 'ours', 'fix-1'), 'fix-1');

      const named = await state.leaveSnapshot(ours);

      assert.equal(named, join(dir, 'committed-smolmachine.smolmachine'));
      assert.equal(readFileSync(join(dir, 'committed-image'), 'utf8'), named);
      assert.equal(readFileSync(join(dir, '.preserve'), 'utf8'), '');
      assert.equal(statSync(named).ino, statSync(ours.sidecar).ino, 'a hard link: no disk spent');
      assert.equal(statSync(join(dir, 'committed-smolmachine')).ino, statSync(ours.launcher).ino);
      assert.deepEqual(readFileSync(join(dir, 'metadata.json')), metadata, 'metadata.json is byte-identical');
      assert.equal(readFileSync(join(dir, 'transcript', 'log'), 'utf8'), 'words');
      assert.deepEqual(readdirSync(dir).sort(), ['.preserve', 'committed-image', 'committed-smolmachine', 'committed-smolmachine.smolmachine', 'metadata.json', 'transcript']);
      assert.deepEqual([mode(named), mode(join(dir, 'committed-image')), mode(join(dir, '.preserve')), mode(join(dir, 'committed-smolmachine'))], [0o600, 0o600, 0o600, 0o700]);
      assert.deepEqual((await state.read('fix-1'))?.committed?.sidecar, named);
    });

    it('makes the folders private when bot-bottle has none yet', async () => {
      await state.leaveSnapshot(snapshotIn(join(home, 'ours', 'new-1'), 'new-1'));
      assert.equal(mode(root), 0o700);
      assert.equal(mode(join(root, 'new-1')), 0o700);
    });

    it('copies when the snapshot is on another file system', async () => {
      const shm = mkdtempSync('/dev/shm/bb-ours-');
      try {
        const ours = snapshotIn(shm, 'far-1', 'far away SMOLPACK');
        const named = await state.leaveSnapshot(ours);
        assert.notEqual(statSync(shm).dev, statSync(home).dev, 'the test needs /dev/shm on another file system than the temp folder');
        assert.notEqual(statSync(named).ino, statSync(ours.sidecar).ino);
        assert.equal(readFileSync(named, 'utf8'), 'far away SMOLPACK');
        assert.equal(mode(named), 0o600);
      } finally {
        rmSync(shm, { recursive: true, force: true });
      }
    });

    it('replaces what an earlier commit left', async () => {
      const dir = bottleDir('again');
      writeFileSync(join(dir, 'committed-smolmachine.smolmachine'), 'old');
      writeFileSync(join(dir, 'committed-image'), 'bot-bottle-committed-again:latest');
      const named = await state.leaveSnapshot(snapshotIn(join(home, 'ours', 'again'), 'again', 'new SMOLPACK'));
      assert.equal(readFileSync(named, 'utf8'), 'new SMOLPACK');
      assert.equal(readFileSync(join(dir, 'committed-image'), 'utf8'), named);
    });

    it('writes committed-image only after the snapshot, and .preserve only after committed-image', async () => {
      const dir = bottleDir('stuck');
      mkdirSync(join(dir, 'committed-smolmachine.smolmachine', 'in the way'), { recursive: true });
      await assert.rejects(state.leaveSnapshot(snapshotIn(join(home, 'ours', 'stuck'), 'stuck')), /Cannot write .*committed-smolmachine\.smolmachine: /);
      assert.deepEqual(readdirSync(dir).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine']);

      rmSync(join(dir, 'committed-smolmachine.smolmachine'), { recursive: true });
      mkdirSync(join(dir, 'committed-image', 'in the way'), { recursive: true });
      await assert.rejects(state.leaveSnapshot(snapshotIn(join(home, 'ours', 'stuck'), 'stuck')), /Cannot write .*committed-image: /);
      assert.deepEqual(readdirSync(dir).sort(), ['committed-image', 'committed-smolmachine', 'committed-smolmachine.smolmachine'], 'no .preserve, no temp files');
    });

    it('refuses a slug bot-bottle would never make', async () => {
      await assert.rejects(state.leaveSnapshot(snapshotIn(join(home, 'ours', 'Odd'), 'Odd_1')), {
        message: '"Odd_1" is not a name bot-bottle gives a bottle: its names are lower-case letters and digits, in groups joined by single hyphens.',
      });
      assert.deepEqual(readdirSync(home), ['ours']);
    });
  });
});

describe("bottles with what bot-bottle knows", () => {
  const at = new Date('2026-03-01T10:00:00Z');
  const snapshot = (slug: string, sidecar: string): Snapshot => ({ slug, sidecar, launcher: sidecar.replace(/\.smolmachine$/, ''), sizeBytes: 1, createdAt: at });
  const known = (slug: string, extra: Partial<BotBottleEntry> = {}): BotBottleEntry => ({ slug, dir: `/h/.bot-bottle/state/${slug}`, metadata: {}, problems: [], ...extra });

  it('adds a bottle bot-bottle committed, keeps ours first, and lists no folder that holds nothing to resume', () => {
    const theirs = snapshot('theirs', '/h/.bot-bottle/state/theirs/committed-smolmachine.smolmachine');
    const ours = snapshot('both', '/state/both/committed-smolmachine.smolmachine');
    const bottles = mergeBottles(
      [{ name: 'bot-bottle-running', state: 'running' }],
      [ours],
      'bot-bottle-',
      [
        known('theirs', { committed: theirs, metadata: { label: 'Theirs' } }),
        known('both', { committed: snapshot('both', '/h/.bot-bottle/state/both/committed-smolmachine.smolmachine') }),
        known('running', { metadata: { agentName: 'claude' } }),
        known('leftover', { metadata: { label: 'nothing here' } }),
      ],
    );
    assert.deepEqual(bottles.map((b) => [b.slug, b.snapshot?.sidecar, b.botBottle?.metadata]), [
      ['both', ours.sidecar, {}],
      ['running', undefined, { agentName: 'claude' }],
      ['theirs', theirs.sidecar, { label: 'Theirs' }],
    ]);
  });
});

describe("bot-bottle's docker bottles beside the smolmachines ones", () => {
  it('lists a container named like a bottle, with its state, and passes over other containers', () => {
    const bottles = mergeBottles(
      [{ name: 'bot-bottle-vm', state: 'running' }],
      [],
      'bot-bottle-',
      [],
      [
        { id: 'a1', name: 'bot-bottle-web-3k9zz', state: 'running', image: 'node:22' },
        { id: 'b2', name: 'bot-bottle-done', state: 'exited' },
        { id: 'c3', name: 'postgres', state: 'running' },
      ],
    );
    assert.deepEqual(bottles.map((b) => [b.slug, backendOf(b), isRunning(b), b.container?.id]), [
      ['done', 'docker', false, 'b2'],
      ['vm', 'smolmachines', true, undefined],
      ['web-3k9zz', 'docker', true, 'a1'],
    ]);
  });

  it('a smolvm machine and a container of one name: the machine is the bottle that freezes', () => {
    const [bottle] = mergeBottles([{ name: 'bot-bottle-x', state: 'stopped' }], [], 'bot-bottle-', [], [{ id: 'a', name: 'bot-bottle-x', state: 'running' }]);
    assert.equal(backendOf(bottle), 'smolmachines');
    assert.equal(isRunning(bottle), false);
  });
});

