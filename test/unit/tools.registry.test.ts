import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ToolError, UserError } from '../../src/core/errors';
import { MemoryLog } from '../support/memoryLog';
import { UnexpectedOutputError } from '../../src/core/tools/command';
import {
  createRegistryNetwork,
  isLoopback,
  parseListeningLine,
  parsePublishedPort,
  publishedPort,
  registryConfig,
  removeContainer,
  runRegistryContainer,
} from '../../src/core/tools/registry';
import { startEphemeralRegistry } from '../../src/core/freeze/registry';
import { startBackgroundProcess, type RunResult } from '../../src/core/run';
import { isAlive } from '../support/processes';

const result = (stdout: string, stderr = '', exitCode = 0): RunResult => ({ stdout, stderr, exitCode });
/** The owner label the next start reads to find this process's leftovers. */
const OWNER = `${hostname()}/${process.pid}`;


describe('ephemeral registry: configuration and parsing', () => {
  it('configures Distribution for loopback, a kernel-picked port, no auth and storage in its temp folder', () => {
    const config = registryConfig('/tmp/bot-bottle-registry-x/data', 'f00d');
    assert.match(config, /^ {2}addr: "127\.0\.0\.1:0"$/m);
    assert.match(config, /^ {4}rootdirectory: "\/tmp\/bot-bottle-registry-x\/data"$/m);
    assert.match(config, /accesslog:\n {4}disabled: true/);
    assert.doesNotMatch(config, /auth|htpasswd|\/etc\/docker/);
  });

  it('keeps odd characters in the storage path inside a quoted scalar', () => {
    assert.match(registryConfig('/t/a "b": #c', 's'), /rootdirectory: "\/t\/a \\"b\\": #c"/);
  });

  it('reads the address from the "listening on" log line', () => {
    const line = 'time="2026-11-29T16:50:34Z" level=info msg="listening on 127.0.0.1:35519" go.version=go1.19.8';
    assert.deepEqual(parseListeningLine(line), { host: '127.0.0.1', port: 35519 });
    assert.deepEqual(parseListeningLine('msg="listening on [::]:5000"'), { host: '[::]', port: 5000 });
    assert.equal(parseListeningLine('level=info msg="redis not configured"'), undefined);
  });

  it('knows loopback from everything else', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '[::1]', 'localhost']) assert.ok(isLoopback(host), host);
    for (const host of ['0.0.0.0', '[::]', '', '10.0.0.1', '192.168.1.2', 'example.com']) assert.ok(!isLoopback(host), host);
  });
});

describe('ephemeral registry: the registry image under docker', () => {
  it('runs registry:2 detached, removed on stop, published on loopback only, on a network of its own without privileges', () => {
    assert.deepEqual(runRegistryContainer('/usr/bin/docker', 'bot-bottle-registry-1').argv, [
      '/usr/bin/docker', 'run', '--detach', '--rm', '--name', 'bot-bottle-registry-1',
      '--label', 'bot-bottle.ephemeral-registry=true', '--label', `bot-bottle.owner=${OWNER}`,
      '--network', 'bot-bottle-registry-1', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--publish', '127.0.0.1::5000', 'registry:2',
    ]);
    assert.deepEqual(createRegistryNetwork('docker', 'bot-bottle-registry-1').argv, [
      'docker', 'network', 'create', '--label', 'bot-bottle.ephemeral-registry=true', '--label', `bot-bottle.owner=${OWNER}`, 'bot-bottle-registry-1',
    ]);
    assert.equal(runRegistryContainer('docker', 'n').parse(result('0123abcd\n')), '0123abcd');
  });

  it('reads the published port and refuses a binding off loopback', () => {
    assert.deepEqual(publishedPort('docker', 'n').argv, ['docker', 'port', 'n', '5000/tcp']);
    assert.equal(parsePublishedPort('127.0.0.1:49153\n'), 49153);
    assert.throws(() => parsePublishedPort('127.0.0.1:49153\n0.0.0.0:49153\n'), UnexpectedOutputError);
    assert.throws(() => parsePublishedPort('[::]:49153\n'), UnexpectedOutputError);
    assert.throws(() => parsePublishedPort(''), UnexpectedOutputError);
  });

  it('removes the container, accepting one that is gone already', () => {
    const remove = removeContainer('docker', 'n');
    assert.deepEqual(remove.argv, ['docker', 'rm', '--force', 'n']);
    remove.parse(result('n'));
    remove.parse(result('', 'Error response from daemon: No such container: n', 1));
    assert.throws(() => remove.parse(result('', 'Cannot connect to the Docker daemon', 1)), /Could not remove the registry container n/);
  });
});

describe('ephemeral registry: lifecycle with a stand-in registry binary', function () {
  this.timeout(15_000);
  let dir: string;
  let tmpRoot: string;
  let log: MemoryLog;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-registry-unit-'));
    tmpRoot = join(dir, 'tmp');
    mkdirSync(tmpRoot);
    log = new MemoryLog();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A Node script called as `<script> serve <config>`; it records its pid beside tmpRoot. */
  function fakeRegistry(body: string): string {
    const script = join(dir, 'fake-registry');
    const prelude = [
      `#!${process.execPath}`,
      "const http = require('node:http');",
      "require('node:fs').writeFileSync(require('node:path').join(process.argv[3], '..', '..', '..', 'fake.pid'), String(process.pid));",
      "const say = (msg) => console.error(`time=\"now\" level=info msg=\"${msg}\"`);",
      'const forever = () => setInterval(() => undefined, 1000);',
    ];
    writeFileSync(script, [...prelude, body, ''].join('\n'), { mode: 0o755 });
    return script;
  }

  const fakePid = () => Number(readFileSync(join(dir, 'fake.pid'), 'utf8'));
  const leftovers = () => readdirSync(tmpRoot);

  const SERVES_V2 = `
    say('REGISTRY_HTTP_ADDR=' + (process.env.REGISTRY_HTTP_ADDR ?? 'unset'));
    const server = http.createServer((req, res) => { res.statusCode = req.url === '/v2/' ? 200 : 404; res.end('{}'); });
    server.listen(0, '127.0.0.1', () => say('listening on 127.0.0.1:' + server.address().port));`;

  it('starts, reports both endpoints, and stops leaving nothing behind', async () => {
    const saved = process.env.REGISTRY_HTTP_ADDR;
    process.env.REGISTRY_HTTP_ADDR = '0.0.0.0:5000';
    try {
      const registry = await startEphemeralRegistry({ registryBin: fakeRegistry(SERVES_V2), log, tmpRoot, pullHost: 'host.smolvm.internal' });
      assert.match(registry.pushEndpoint, /^127\.0\.0\.1:\d+$/);
      assert.equal(registry.pullEndpoint, `host.smolvm.internal:${registry.port}`);
      assert.equal(registry.backing.kind, 'process');
      assert.ok(log.lines.includes('  time="now" level=info msg="REGISTRY_HTTP_ADDR=unset"'), log.text);
      assert.ok(isAlive(fakePid()));
      await registry.stop();
      await registry.stop();
      assert.ok(!isAlive(fakePid()));
      assert.deepEqual(leftovers(), []);
    } finally {
      if (saved === undefined) delete process.env.REGISTRY_HTTP_ADDR;
      else process.env.REGISTRY_HTTP_ADDR = saved;
    }
  });

  it('refuses and stops a registry that listens off loopback', async () => {
    const bin = fakeRegistry("say('listening on 0.0.0.0:5999'); forever();");
    await assert.rejects(startEphemeralRegistry({ registryBin: bin, log, tmpRoot }), /listens on 0\.0\.0\.0, not on loopback/);
    assert.ok(!isAlive(fakePid()));
    assert.deepEqual(leftovers(), []);
  });

  it('explains a registry that exits before it is ready, with its last output', async () => {
    const bin = fakeRegistry("console.error('level=fatal msg=\"open /nope: permission denied\"'); process.exit(1);");
    const error = await startEphemeralRegistry({ registryBin: bin, log, tmpRoot }).catch((e: unknown) => e);
    assert.ok(error instanceof ToolError, String(error));
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /exited with status 1 before it was ready/);
    assert.match(error.message, /permission denied/);
    assert.deepEqual(leftovers(), []);
  });

  it('gives up on a registry that never reports its address', async () => {
    const bin = fakeRegistry('forever();');
    await assert.rejects(startEphemeralRegistry({ registryBin: bin, log, tmpRoot, startTimeoutMs: 2000 }), /did not report its address within 2 s/);
    assert.ok(!isAlive(fakePid()));
    assert.deepEqual(leftovers(), []);
  });

  it('stops and cleans up when cancelled while starting', async () => {
    const controller = new AbortController();
    const bin = fakeRegistry("say('warming up'); forever();");
    const starting = startEphemeralRegistry({ registryBin: bin, log, tmpRoot, signal: controller.signal });
    while (!log.text.includes('warming up')) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await assert.rejects(starting, CancelledError);
    assert.ok(!isAlive(fakePid()));
    assert.deepEqual(leftovers(), []);
  });

  it('does not start at all when already cancelled, or with nothing to run it', async () => {
    await assert.rejects(startEphemeralRegistry({ registryBin: '/nonexistent', log, signal: AbortSignal.abort() }), CancelledError);
    await assert.rejects(startEphemeralRegistry({ log }), (error: unknown) => error instanceof UserError && /botBottle\.paths\.registry/.test(error.message));
    await assert.rejects(startEphemeralRegistry({ registryBin: '/x', log, pullHost: 'http://host:5000' }), /botBottle\.registry\.pullHost/);
    assert.equal(existsSync(join(dir, 'fake.pid')), false);
  });
});

describe('ephemeral registry: container lifecycle with a stand-in docker', function () {
  this.timeout(15_000);
  let dir: string;
  let calls: string;
  let server: Server;
  let port: number;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bb-registry-docker-'));
    calls = join(dir, 'calls');
    writeFileSync(calls, '');
    server = createServer((req, res) => {
      res.statusCode = req.url === '/v2/' ? 200 : 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A `docker` that records its argv; `run` takes `runSeconds`, `port` names the test's server. */
  function fakeDocker(runSeconds = 0): string {
    const script = join(dir, 'docker');
    writeFileSync(script, [
      '#!/bin/sh',
      `echo "$*" >> '${calls}'`,
      'case "$1" in',
      `  run) sleep ${runSeconds}; echo 0123456789abcdef ;;`,
      `  port) echo 127.0.0.1:${port} ;;`,
      '  rm) echo "$3" ;;',
      'esac',
      '',
    ].join('\n'), { mode: 0o755 });
    return script;
  }

  const recorded = () => readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean);

  it('runs the registry image when there is no registry binary, and removes the container on stop', async () => {
    const registry = await startEphemeralRegistry({ dockerBin: fakeDocker(), log: new MemoryLog(), dockerEnv: { DOCKER_HOST: 'unix:///x.sock' } });
    assert.equal(registry.pushEndpoint, `127.0.0.1:${port}`);
    assert.equal(registry.backing.kind, 'container');
    const name = (registry.backing as { name: string }).name;
    assert.match(name, /^bot-bottle-registry-[0-9a-f]{12}$/);
    await registry.stop();
    await registry.stop();
    const labels = `--label bot-bottle.ephemeral-registry=true --label bot-bottle.owner=${OWNER}`;
    assert.deepEqual(recorded(), [
      `network create ${labels} ${name}`,
      `run --detach --rm --name ${name} ${labels} --network ${name} --cap-drop ALL --security-opt no-new-privileges --publish 127.0.0.1::5000 registry:2`,
      `port ${name} 5000/tcp`,
      `rm --force ${name}`,
      `network rm ${name}`,
    ]);
  });

  it('removes the container by name when cancelled during docker run', async () => {
    const controller = new AbortController();
    const starting = startEphemeralRegistry({ dockerBin: fakeDocker(5), log: new MemoryLog(), signal: controller.signal });
    while (recorded().length < 2) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await assert.rejects(starting, CancelledError);
    const [, run, remove, removeNetwork] = recorded();
    const name = /--name (\S+)/.exec(run)?.[1];
    assert.equal(remove, `rm --force ${name}`);
    assert.equal(removeNetwork, `network rm ${name}`);
  });
});

describe('background process', () => {
  it('kills a process group that ignores SIGTERM, grandchildren included', async () => {
    const log = new MemoryLog();
    const script = "process.on('SIGTERM', () => console.log('ignoring SIGTERM')); const c = require('node:child_process').spawn('sleep', ['30'], { stdio: 'ignore' }); console.log('child ' + c.pid); setInterval(() => undefined, 1000);";
    const server = startBackgroundProcess(log, [process.execPath, '-e', script]);
    let childPid = 0;
    server.onLine((_stream, line) => {
      const match = /^child (\d+)$/.exec(line);
      if (match) childPid = Number(match[1]);
    });
    while (!childPid) await new Promise((r) => setTimeout(r, 10));
    await server.stop(200);
    assert.ok(!isAlive(server.pid));
    assert.ok(!isAlive(childPid));
    assert.match(server.exitDescription() ?? '', /killed by SIGKILL/);
    assert.match(log.text, /ignored SIGTERM for 200 ms/);
  });

  it('reports a program that cannot be started', async () => {
    const server = startBackgroundProcess(new MemoryLog(), ['/nonexistent/registry', 'serve']);
    await server.exited;
    assert.match(server.exitDescription() ?? '', /could not be started \(ENOENT\)/);
    await server.stop();
  });
});
