/**
 * bot-bottle's docker backend through real parts: the real docker client on the podman service, a
 * real container named `bot-bottle-<slug>`, a real `docker commit`, the committed image really run,
 * and the bot-bottle CLI double resuming from the tag. The extension's docker calls go through
 * commitBodyProxy.ts (Podman 4 needs a body on a commit request that Docker Engine does not); the
 * test's own set-up talks to the service directly.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BotBottle, isRunning, type Bottle, type CommittedImage, type CoreSettings, type PipelineProgress } from '../../src/core/facade';
import { CancelledError } from '../../src/core/errors';
import { botBottleDouble, type BotBottleDouble } from '../support/botBottleCli';
import { startCommitBodyProxy, type CommitBodyProxy } from '../support/commitBodyProxy';
import { processesMentioning, REPO, SIM_BIN, startWorld, type World } from '../support/world';

const IMAGE = 'bb-busybox-it:1';
const signal = () => new AbortController().signal;

describe("bot-bottle's docker bottles, through the real docker client (podman's docker API)", function () {
  this.timeout(120_000);
  let world: World;
  let proxy: CommitBodyProxy;
  let restoreEnv: () => void;
  let botBottle: BotBottleDouble;
  let core: BotBottle;
  const settings = (overrides: Partial<CoreSettings['paths']> = {}): CoreSettings => ({
    paths: { smolvm: SIM_BIN, docker: '', crane: '', skopeo: '', registry: '', ...overrides },
    stateDir: world.stateRoot,
    machinePrefix: 'bot-bottle-',
    pullHost: '127.0.0.1',
  });
  const newCore = (overrides: Partial<CoreSettings['paths']> = {}) => new BotBottle(settings(overrides), { main: world.log, tools: world.toolLog });
  /** The engine itself, not through the proxy: the test's set-up and checks. */
  const engine = (...args: string[]) => execFileSync('docker', args, { env: { ...process.env, ...world.containers.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const imageExists = (tag: string) => spawnSync('docker', ['image', 'inspect', tag], { env: { ...process.env, ...world.containers.env }, stdio: 'ignore' }).status === 0;
  const listed = async (slug: string, from = core): Promise<Bottle | undefined> => (await from.listBottles()).find((b) => b.slug === slug);

  before(async () => {
    world = await startWorld('docker bottles');
    proxy = await startCommitBodyProxy(world.containers.dockerHost, join(world.root, 'docker-api.sock'));
    restoreEnv = world.withEnv({ DOCKER_HOST: proxy.dockerHost });
    botBottle = botBottleDouble(world.home);
    core = newCore();
    buildBusyboxImage(join(world.root, 'busybox-image'));
    // Its work is written as it starts: a `docker exec` would leave podman's exec monitor waiting for minutes.
    engine('run', '--detach', '--name', 'bot-bottle-web-3k9zz', IMAGE, 'sh', '-c', 'echo work in progress > /note.txt && exec sleep 3600');
    engine('create', '--name', 'bot-bottle-idle-1', IMAGE);
    engine('run', '--detach', '--name', 'postgres-bot-bottle-x', IMAGE);
    world.createRunningBottle('vm-7k2p1');
  });
  after(async () => {
    restoreEnv?.();
    await proxy?.close();
    await world?.stop();
  });

  function buildBusyboxImage(context: string): void {
    mkdirSync(join(context, 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(context, 'bin', 'busybox'));
    chmodSync(join(context, 'bin', 'busybox'), 0o755);
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY bin /bin\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sleep", "3600"]\n');
    engine('build', '--tag', IMAGE, context);
  }

  it('lists the docker bottles beside the smolmachines one, with state, image and uptime, and no other container', async () => {
    botBottle.launch('web-3k9zz', { backend: 'docker', label: 'The web app' });
    const bottles = await core.listBottles();
    assert.deepEqual(bottles.map((b) => [b.slug, b.container?.state ?? b.machine?.state, isRunning(b)]), [
      ['idle-1', 'created', false],
      ['vm-7k2p1', 'running', true],
      ['web-3k9zz', 'running', true],
    ]);
    const web = bottles.find((b) => b.slug === 'web-3k9zz')!;
    assert.equal(web.machine, undefined);
    assert.match(web.container?.image ?? '', /bb-busybox-it:1$/);
    assert.ok(web.container!.uptimeSeconds! >= 0 && web.container!.uptimeSeconds! < 600, String(web.container?.uptimeSeconds));
    assert.equal(web.botBottle?.metadata.label, 'The web app');
    assert.equal(bottles.find((b) => b.slug === 'vm-7k2p1')?.container, undefined);
  });

  it('freezes by docker commit, as bot-bottle commits, with progress and the Tools log; the image runs and bot-bottle resume would boot it', async () => {
    const metadataBefore = readFileSync(join(botBottle.stateDir('web-3k9zz'), 'metadata.json'));
    const steps: PipelineProgress[] = [];

    const frozen = (await core.freeze((await listed('web-3k9zz'))!, { signal: signal(), onProgress: (p) => steps.push(p) })) as CommittedImage;

    assert.equal(frozen.tag, 'bot-bottle-committed-web-3k9zz:latest');
    assert.match(frozen.imageId, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual([...new Set(steps.map((p) => p.stepTitle))], ['Checking that the container is there', 'Committing the container', 'Keeping the image', 'Leaving the image where bot-bottle looks']);
    assert.equal(steps.at(-1)?.fraction, 1);
    assert.equal(proxy.commitsFixed(), 1);
    assert.match(world.toolLog.text, /\$ \S*docker commit bot-bottle-web-3k9zz bot-bottle-committed-web-3k9zz:incoming-[0-9a-f]{12}\n/);
    assert.match(world.toolLog.text, /\$ \S*docker tag bot-bottle-committed-web-3k9zz:incoming-[0-9a-f]{12} bot-bottle-committed-web-3k9zz:latest\n/);

    const dir = botBottle.stateDir('web-3k9zz');
    assert.equal(readFileSync(join(dir, 'committed-image'), 'utf8'), frozen.tag);
    assert.ok(existsSync(join(dir, '.preserve')));
    assert.deepEqual(readFileSync(join(dir, 'metadata.json')), metadataBefore);
    assert.equal(engine('image', 'inspect', '--format', '{{.Id}}', frozen.tag).trim(), frozen.imageId);
    assert.doesNotMatch(engine('images', '--format', '{{.Repository}}:{{.Tag}}'), /incoming-/, 'the temporary tag is gone');
    assert.equal(engine('run', '--rm', frozen.tag, 'cat', '/note.txt'), 'work in progress\n', 'the committed image runs, with what the container had');

    assert.deepEqual(botBottle.resume('web-3k9zz', imageExists), { slug: 'web-3k9zz', backend: 'docker', label: 'The web app', boot: { from: 'image', tag: frozen.tag } });
    assert.equal((await listed('web-3k9zz'))?.botBottle?.committedTag, frozen.tag);
  });

  it('Resume with bot-bottle runs `bot-bottle resume <slug>`, which boots the committed image', async () => {
    const bin = join(world.root, 'bin');
    mkdirSync(bin, { recursive: true });
    const cli = join(bin, 'bot-bottle');
    writeFileSync(cli, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(join(REPO, 'test/support/botBottleCli.ts'))} "$@"\n`);
    chmodSync(cli, 0o755);
    const argv = newCore({ botBottle: cli }).botBottleResumeArgv('web-3k9zz');
    assert.deepEqual(argv, [cli, 'resume', 'web-3k9zz']);
    const [file, ...args] = argv;
    const plan = JSON.parse(execFileSync(file, args, { cwd: REPO, env: { ...process.env, ...world.containers.env }, encoding: 'utf8' })) as unknown;
    assert.deepEqual(plan, { slug: 'web-3k9zz', backend: 'docker', label: 'The web app', boot: { from: 'image', tag: 'bot-bottle-committed-web-3k9zz:latest' } });

    const restore = world.withEnv({ PATH: '/nonexistent' });
    try {
      assert.throws(() => newCore().botBottleResumeArgv('web-3k9zz'), { message: 'bot-bottle was not found on PATH. Install it, or set botBottle.paths.botBottle to its full path.' });
    } finally {
      restore();
    }
  });

  it('cancelled during the commit, keeps the last committed image and bot-bottle’s files as they were', async () => {
    const before = engine('image', 'inspect', '--format', '{{.Id}}', 'bot-bottle-committed-web-3k9zz:latest').trim();
    const committedImage = readFileSync(join(botBottle.stateDir('web-3k9zz'), 'committed-image'));
    const controller = new AbortController();
    const steps: string[] = [];
    const freezing = core.freeze((await listed('web-3k9zz'))!, {
      signal: controller.signal,
      onProgress: (p) => {
        steps.push(p.stepId);
        if (p.stepId === 'commit') setImmediate(() => controller.abort());
      },
    });
    await assert.rejects(freezing, CancelledError);
    assert.ok(!steps.includes('keep'));
    assert.equal(engine('image', 'inspect', '--format', '{{.Id}}', 'bot-bottle-committed-web-3k9zz:latest').trim(), before);
    assert.deepEqual(readFileSync(join(botBottle.stateDir('web-3k9zz'), 'committed-image')), committedImage);
  });

  describe('bad input', () => {
    it('a bottle whose commit tag docker refuses is refused before anything runs, as docker itself would', async () => {
      engine('run', '--detach', '--name', 'bot-bottle-Fix-Login', IMAGE);
      const bottle = await listed('Fix-Login');
      assert.equal(bottle?.container?.state, 'running');
      const toolLines = world.toolLog.lines.length;
      await assert.rejects(core.freeze(bottle!, { signal: signal() }), {
        name: 'UserError',
        message: 'Bottle "Fix-Login" cannot be committed the way bot-bottle commits: bot-bottle-committed-Fix-Login:latest is not an image tag docker accepts (docker repository names must be lower case).',
      });
      assert.equal(world.toolLog.lines.length, toolLines, 'no tool ran');
      assert.ok(!existsSync(botBottle.stateDir('Fix-Login')));
      assert.throws(() => engine('commit', 'bot-bottle-Fix-Login', 'bot-bottle-committed-Fix-Login:latest'), (error: { stderr: string }) => /must be lowercase/.test(error.stderr));
    });

    it('no docker engine: the smolmachines bottles are still listed, the reason is logged once, and a freeze says what to do', async () => {
      const web = (await listed('web-3k9zz'))!;
      const socket = join(world.root, 'no-engine.sock');
      const restore = world.withEnv({ DOCKER_HOST: `unix://${socket}` });
      try {
        const fresh = newCore();
        const first = await fresh.listBottles();
        await fresh.listBottles();
        assert.deepEqual(first.map((b) => b.slug), ['vm-7k2p1']);
        const why = `No docker bottles are listed: docker ps failed: Cannot connect to the Docker daemon at unix://${socket}. Is the docker daemon running?`;
        assert.equal(world.log.lines.filter((line) => line.includes(why)).length, 1, world.log.text);
        await assert.rejects(fresh.freeze(web, { signal: signal() }), {
          message: `Checking that the container is there failed: The docker engine does not answer, so bot-bottle-web-3k9zz cannot be committed: Cannot connect to the Docker daemon at unix://${socket}. Is the docker daemon running? Start Docker (or Podman's docker API service), then freeze again.`,
        });
      } finally {
        restore();
      }
    });

    it('no docker client: the smolmachines bottles are still listed, and the log says why once', async () => {
      const fresh = newCore({ docker: '/nonexistent/docker' });
      assert.deepEqual((await fresh.listBottles()).map((b) => b.slug), ['vm-7k2p1']);
      await fresh.listBottles();
      const why = 'No docker bottles are listed: botBottle.paths.docker is set to "/nonexistent/docker", but that does not exist.';
      assert.equal(world.log.lines.filter((line) => line.includes(why)).length, 1);
    });

    it('Podman 4’s docker API, met directly, refuses docker commit; the freeze says why and what to do instead', async () => {
      const restore = world.withEnv({ DOCKER_HOST: world.containers.dockerHost });
      try {
        const bottle = (await listed('web-3k9zz'))!;
        await assert.rejects(core.freeze(bottle, { signal: signal() }), {
          message:
            'Committing the container failed: The engine refused docker commit ("Decode(): EOF"): this Podman\'s docker API needs a request body that docker clients since version 24 no longer send (containers/podman#26261). ' +
            'Freeze with Docker Engine, or run podman commit bot-bottle-web-3k9zz bot-bottle-committed-web-3k9zz:latest yourself.',
        });
        assert.doesNotMatch(engine('images', '--format', '{{.Repository}}:{{.Tag}}'), /incoming-/);
      } finally {
        restore();
      }
    });
  });

  describe('at the end', () => {
    it('stopping the container service leaves none of its containers running', async () => {
      assert.ok(processesMentioning(world.containers.dir).some((line) => line.includes('bot-bottle-web-3k9zz')), 'the containers run before');
      await world.containers.stop();
      assert.deepEqual(processesMentioning(world.containers.dir), []);
    });
  });
});
