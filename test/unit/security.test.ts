/**
 * The promises of SECURITY.md, each checked: no child is started through a shell; the log never
 * holds environment values or credentials; the image endpoint and the registry listen on loopback
 * unless botBottle.registry.pullHost names another address; settings that choose programs or
 * addresses are withheld from untrusted workspaces (the in-host check is test/extension's).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CancelledError, ToolError } from '../../src/core/errors';
import { MemoryLog } from '../support/memoryLog';
import { serveImage } from '../../src/core/oci/endpoint';
import { bindAddressFor } from '../../src/core/pullHost';
import { assembleImage, type OciImage } from '../../src/core/oci/image';
import { digestLayer } from '../../src/core/oci/layer';
import { createRunner, formatCommand, startBackgroundProcess } from '../../src/core/run';
import { runTool } from '../../src/core/run';
import { startEphemeralRegistry } from '../../src/core/freeze/registry';
import { parsePublishedPort, registryConfig, runRegistryContainer } from '../../src/core/tools/registry';
import { SmolvmCli } from '../../src/core/tools/smolvm';
import { repoRoot } from '../support/sim';

const SRC = join(repoRoot, 'src');
/** The one module allowed to start processes. */
const RUNNER = 'src/core/run.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name) ? [path] : [];
  });
}

/** Every line of src/ matching `pattern`, as `file:line: text`, leaving out the files in `allowed`. */
function linesMatching(pattern: RegExp, allowed: readonly string[] = []): string[] {
  return sourceFiles(SRC).flatMap((file) => {
    const name = relative(repoRoot, file);
    if (allowed.includes(name)) return [];
    return readFileSync(file, 'utf8').split('\n').flatMap((text, i) => (pattern.test(text) ? [`${name}:${i + 1}: ${text.trim()}`] : []));
  });
}

/** A value no log line may contain. */
const SECRET = `s3cr3t-${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 32)}`;
const SECRET_SHA = createHash('sha256').update(SECRET).digest('hex');

function assertNoSecret(log: MemoryLog, ...texts: string[]): void {
  for (const line of [...log.lines, ...texts]) assert.ok(!line.includes(SECRET), `the secret is in: ${line}`);
}

describe('security: no child process through a shell', () => {
  it('src/ has at least one file to scan (the scan is not vacuous)', () => {
    assert.ok(sourceFiles(SRC).length > 20);
    assert.ok(linesMatching(/from 'execa'/).some((l) => l.startsWith(RUNNER)));
  });

  it('imports child_process nowhere in src/ (the runner uses execa)', () => {
    assert.deepEqual(linesMatching(/['"](node:)?child_process['"]/), []);
  });

  it('imports execa only in the runner', () => {
    assert.deepEqual(linesMatching(/['"]execa['"]/, [RUNNER]), []);
  });

  it('never asks for a shell: no `shell:` option set to true or to a program, no execaCommand, no `$` template', () => {
    assert.deepEqual(linesMatching(/\bshell\s*:\s*(true|['"`])/), []);
    // execa's `$` tag stands where an expression starts; a `$` that ends a regular expression does not.
    const shellish = /\bexecaCommand(Sync)?\b|(?:^|[\s=(,;!&|:?])\$`|\bexecaNode\b/;
    assert.ok(['await $`ls -l`', 'const r = $`sh`', 'run($`x`)'].every((line) => shellish.test(line)), 'the rule catches the $ tag');
    assert.ok(!shellish.test('new RegExp(String.raw`^a*$`)'), 'and not a regular expression that ends in $');
    assert.deepEqual(linesMatching(shellish), []);
  });

  it('never calls exec/execSync/spawn/fork/execFile with a command string', () => {
    assert.deepEqual(linesMatching(/\b(exec|execSync|spawn|spawnSync|fork|execFile|execFileSync)\(\s*[`'"]/), []);
    assert.deepEqual(linesMatching(/\b(spawn|spawnSync|fork|execFile|execFileSync|execSync)\(/), []);
  });

  it('never types into a terminal or runs a VS Code shell task (both go through a shell)', () => {
    assert.deepEqual(linesMatching(/\.sendText\(|\bShellExecution\b/), []);
    assert.deepEqual(linesMatching(/\bshellArgs\s*:\s*[`'"]/), [], 'shellArgs is an argv array, never a string a shell would split');
  });

  it('keeps the lint rule that stops child_process imports outside the runner', () => {
    const config = readFileSync(join(repoRoot, 'eslint.config.mjs'), 'utf8');
    assert.match(config, /name: 'child_process', message: 'Run processes through src\/core\/run\.ts\.'/);
    assert.match(config, /name: 'node:child_process', message: 'Run processes through src\/core\/run\.ts\.'/);
  });

  it('passes shell metacharacters to the program as they are, never to a shell', async () => {
    const log = new MemoryLog();
    const hostile = ['$(touch /tmp/pwned)', '`id`', 'a; echo injected', '* ?', "'", '"', '\n', '|', '&&', '$HOME'];
    const result = await createRunner(log)(['printf', '[%s]', ...hostile]);
    assert.equal(result.stdout, hostile.map((a) => `[${a}]`).join(''));
  });

  it('runs argv[0] as a file name: a command line with spaces is not found rather than run by a shell', async () => {
    const error = await createRunner(new MemoryLog())(['echo hello']).catch((e: unknown) => e);
    assert.ok(error instanceof ToolError);
    assert.equal(error.message, 'echo hello was not found. Install it or set its path in the Bot Bottle settings.');
    const server = startBackgroundProcess(new MemoryLog(), ['sleep 1']);
    await server.exited;
    assert.equal(server.exitDescription(), 'could not be started (ENOENT)');
  });
});

describe('security: the log never holds environment values or credentials', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.BOT_BOTTLE_TEST_CREDENTIAL;
    process.env.BOT_BOTTLE_TEST_CREDENTIAL = SECRET;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.BOT_BOTTLE_TEST_CREDENTIAL;
    else process.env.BOT_BOTTLE_TEST_CREDENTIAL = saved;
  });

  /** Prints the sha256 of $TOKEN and $BOT_BOTTLE_TEST_CREDENTIAL: proves the child had them, without printing them. */
  const HASH_BOTH = 'printf %s "$TOKEN" | sha256sum; printf %s "$BOT_BOTTLE_TEST_CREDENTIAL" | sha256sum';

  it('a command given a secret in its environment (and one inherited) logs neither', async () => {
    const log = new MemoryLog();
    const result = await createRunner(log)(['sh', '-c', HASH_BOTH], { env: { TOKEN: SECRET } });
    assert.deepEqual(result.stdout.split('\n').map((l) => l.split(' ')[0]), [SECRET_SHA, SECRET_SHA], 'the child got both values');
    assert.ok(log.lines.length >= 3, log.text);
    assertNoSecret(log);
  });

  it('nor when it fails, times out, cannot start or is cancelled, nor in the error it throws', async () => {
    const log = new MemoryLog();
    const run = createRunner(log);
    const env = { TOKEN: SECRET };
    const failures = (await Promise.all([
      run(['sh', '-c', `${HASH_BOTH} >&2; exit 3`], { env }).catch((e: Error) => e),
      run(['sleep', '30'], { env, timeoutMs: 100 }).catch((e: Error) => e),
      run(['/nonexistent/tool'], { env }).catch((e: Error) => e),
      run(['sleep', '30'], { env, signal: AbortSignal.timeout(100) }).catch((e: Error) => e),
    ])) as Error[];
    assert.ok(failures[0] instanceof ToolError && failures[0].exitCode === 3);
    assert.ok(failures[3] instanceof CancelledError);
    assertNoSecret(log, ...failures.map((e) => `${e.message} ${(e as ToolError).stderrTail ?? ''} ${(e as ToolError).command?.join(' ') ?? ''}`));
  });

  it('a background process given a secret in its environment does not log it', async () => {
    const log = new MemoryLog();
    const server = startBackgroundProcess(log, ['sh', '-c', HASH_BOTH], { env: { TOKEN: SECRET } });
    await server.exited;
    assert.ok(log.lines.some((l) => l.includes(SECRET_SHA)), 'the child got the value');
    assertNoSecret(log);
  });

  it('environment values handed to smolvm as -e flags are shown as NAME=… in the log', async () => {
    const cli = new SmolvmCli('/bin/true');
    const log = new MemoryLog();
    await runTool(createRunner(log), cli.exec('bot-bottle-a', ['true'], { env: { API_TOKEN: SECRET } }));
    assert.ok(log.lines.includes('$ /bin/true machine exec --name bot-bottle-a -e API_TOKEN=… -- true'), log.text);
    assert.equal(formatCommand(['docker', 'run', '--env', `A=${SECRET}`, `--env=B=${SECRET}`, 'img', '--', 'sh', '-e', 'x=1']), 'docker run --env A=… --env=B=… img -- sh -e x=1');
    assertNoSecret(log);
  });

  it('the registry’s HTTP secret is written to a private file and never logged', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'bb-security-'));
    try {
      const log = new MemoryLog();
      let configSeen = '';
      const registry = await startEphemeralRegistry({ registryBin: fakeRegistry(dir), log, tmpRoot: dir });
      try {
        assert.equal(registry.backing.kind, 'process');
        const config = join((registry.backing as { dir: string }).dir, 'config.yml');
        configSeen = readFileSync(config, 'utf8');
        assert.equal(statSync(config).mode & 0o777, 0o600, 'the config holding the secret is readable by its owner only');
      } finally {
        await registry.stop();
      }
      const secret = /secret: "([0-9a-f]{32})"/.exec(configSeen)?.[1];
      assert.ok(secret, configSeen);
      assert.ok(!log.text.includes(secret), log.text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('security: servers listen on loopback unless the pull host names an address', () => {
  let dir: string;
  let image: OciImage;
  const log = new MemoryLog();
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bb-security-'));
    const layerFile = join(dir, 'layer.tar.gz');
    writeFileSync(layerFile, gzipSync(Buffer.alloc(4096, 'x')));
    image = assembleImage({ architecture: 'amd64', layerFile, layer: await digestLayer(layerFile, { gzip: true }), gzip: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the image endpoint binds 127.0.0.1 for the default pull host and for host names, and is not reachable from another address', async () => {
    for (const pullHost of ['127.0.0.1', 'host.smolvm.internal', 'localhost']) {
      const endpoint = await serveImage(image, { pullHost, log });
      try {
        assert.equal(endpoint.address, '127.0.0.1', pullHost);
        assert.equal(await status(`http://127.0.0.1:${endpoint.port}/v2/`), 200);
        for (const other of otherAddresses()) assert.equal(await status(`http://${other}:${endpoint.port}/v2/`), 'ECONNREFUSED', `${pullHost}: reachable on ${other}`);
      } finally {
        await endpoint.close();
      }
    }
  });

  it('the image endpoint binds another address only when the pull host names exactly that address', async () => {
    assert.equal(bindAddressFor('10.1.2.3'), '10.1.2.3');
    assert.equal(bindAddressFor('[fd00::5]'), 'fd00::5');
    const [outside] = otherAddresses();
    assert.ok(outside, 'this machine has a non-loopback IPv4 address to test with');
    const endpoint = await serveImage(image, { pullHost: outside, log });
    try {
      assert.equal(endpoint.address, outside);
      assert.equal(await status(`http://${outside}:${endpoint.port}/v2/`), 200);
      assert.equal(await status(`http://127.0.0.1:${endpoint.port}/v2/`), 'ECONNREFUSED');
    } finally {
      await endpoint.close();
    }
  });

  it('the image endpoint refuses a wildcard pull host (every network)', () => {
    for (const wildcard of ['0.0.0.0', '[::]', '[0:0:0:0:0:0:0:0]']) {
      assert.throws(() => bindAddressFor(wildcard), { message: `botBottle.registry.pullHost must name one address, not "${wildcard}" (every network).` });
    }
  });

  it('the registry is configured for 127.0.0.1 whatever the pull host, and ignores REGISTRY_HTTP_ADDR from the environment', async () => {
    assert.match(registryConfig('/d', 's'), /^ {2}addr: "127\.0\.0\.1:0"$/m);
    const saved = process.env.REGISTRY_HTTP_ADDR;
    process.env.REGISTRY_HTTP_ADDR = '0.0.0.0:5999';
    try {
      const registry = await startEphemeralRegistry({ registryBin: fakeRegistry(dir), log, tmpRoot: dir, pullHost: 'host.smolvm.internal' });
      try {
        assert.match(registry.pushEndpoint, /^127\.0\.0\.1:\d+$/);
        assert.equal(registry.pullEndpoint, `host.smolvm.internal:${registry.port}`);
        for (const other of otherAddresses()) assert.equal(await status(`http://${other}:${registry.port}/v2/`), 'ECONNREFUSED');
      } finally {
        await registry.stop();
      }
    } finally {
      if (saved === undefined) delete process.env.REGISTRY_HTTP_ADDR;
      else process.env.REGISTRY_HTTP_ADDR = saved;
    }
  });

  it('a registry that listens anywhere but loopback is stopped and refused', async () => {
    const bin = fakeRegistry(dir, '0.0.0.0');
    await assert.rejects(startEphemeralRegistry({ registryBin: bin, log, tmpRoot: dir }), { message: 'The registry listens on 0.0.0.0, not on loopback; it was stopped.' });
  });

  it('the registry image under docker publishes on 127.0.0.1 only, and a binding elsewhere is refused', () => {
    assert.ok(runRegistryContainer('docker', 'n').argv.includes('127.0.0.1::5000'));
    assert.equal(parsePublishedPort('127.0.0.1:49153\n'), 49153);
    assert.throws(() => parsePublishedPort('0.0.0.0:49153\n[::]:49153\n'), /only loopback bindings/);
  });
});

describe('security: untrusted workspaces cannot choose programs or addresses', () => {
  it('every setting naming a program, a folder or an address is in restrictedConfigurations', () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    const restricted: string[] = manifest.capabilities.untrustedWorkspaces.restrictedConfigurations;
    assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
    const settings = Object.keys(manifest.contributes.configuration.properties);
    const sensitive = settings.filter((key) => /^botBottle\.(paths\.|stateDir$|machinePrefix$|registry\.)/.test(key));
    assert.ok(sensitive.length >= 8, sensitive.join(', '));
    assert.deepEqual(sensitive.filter((key) => !restricted.includes(key)), []);
  });
});

/** Non-loopback IPv4 addresses of this machine. */
function otherAddresses(): string[] {
  return Object.values(networkInterfaces()).flat().flatMap((i) => (i && i.family === 'IPv4' && !i.internal ? [i.address] : []));
}

/** The status of a GET, or the connection error's code. */
function status(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

/**
 * A stand-in for Distribution: listens where its config says (or on `forceHost`), says so as
 * Distribution does, answers GET /v2/, and refuses to start if any REGISTRY_* variable reached it.
 */
function fakeRegistry(dir: string, forceHost?: string): string {
  const script = join(dir, `fake-registry-${forceHost ?? 'config'}`);
  writeFileSync(script, [
    `#!${process.execPath}`,
    "const leaked = Object.keys(process.env).filter((k) => k.startsWith('REGISTRY_'));",
    "if (leaked.length) { console.error('REGISTRY_ variables reached the registry: ' + leaked.join(' ')); process.exit(3); }",
    "const config = require('node:fs').readFileSync(process.argv[3], 'utf8');",
    'const [, host, port] = /addr: "([^"]+):(\\d+)"/.exec(config);',
    `const listenHost = ${JSON.stringify(forceHost ?? '')} || host;`,
    "const server = require('node:http').createServer((q, r) => { r.writeHead(q.url === '/v2/' ? 200 : 404); r.end('{}'); });",
    'server.listen(Number(port), listenHost, () => console.error(`time="now" level=info msg="listening on ${listenHost}:${server.address().port}"`));',
    '',
  ].join('\n'), { mode: 0o755 });
  return script;
}
