// Runs code-server in the foreground for `npm start` (scripts/start.sh) until Ctrl-C, then stops
// its whole process group. Code-server and the extension host get this process's environment.
//
//   node out/test/vscode/serve.cjs --folder DIR [--extensions-dir DIR] [--user-data-dir DIR]
//        [--install-vsix FILE] [--settings JSON] [--host 127.0.0.1] [--port 8080|0]
//
// --port: that port if it is free, otherwise any free one (0: any free one).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, installVsix, startCodeServer, type CodeServer } from './codeServer';

async function portIsFree(host: string, port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, host, () => srv.close(() => res(true)));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      folder: { type: 'string' },
      'extensions-dir': { type: 'string' },
      'user-data-dir': { type: 'string' },
      'install-vsix': { type: 'string' },
      settings: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
    },
  });
  if (!values.folder) throw new Error('--folder is required');
  const host = values.host ?? '127.0.0.1';
  const extensionsDir = values['extensions-dir'] ? resolve(values['extensions-dir']) : undefined;
  if (values['install-vsix']) {
    if (!extensionsDir) throw new Error('--install-vsix needs --extensions-dir');
    installVsix(values['install-vsix'], extensionsDir);
    console.log(`Installed ${values['install-vsix']} into ${extensionsDir}`);
  }
  let port = Number(values.port ?? 0);
  if (port !== 0 && !(await portIsFree(host, port))) {
    const wanted = port;
    port = await freePort(host);
    console.log(`Port ${wanted} is taken: using ${port}`);
  }

  const folder = resolve(values.folder);
  const server: CodeServer = await startCodeServer({
    folder,
    host,
    ...(port !== 0 ? { port } : {}),
    extensionsDir,
    userDataDir: values['user-data-dir'] ? resolve(values['user-data-dir']) : undefined,
    settings: values.settings ? (JSON.parse(values.settings) as Record<string, unknown>) : {},
    onLog: process.env.BOT_BOTTLE_CS_VERBOSE === '1' ? (l) => console.log(`[code-server] ${l}`) : undefined,
  });

  console.log('');
  console.log(`Bot Bottle is running in code-server (folder ${folder}). Open this URL in a browser:`);
  console.log(`    ${server.url}`);
  console.log('Press Ctrl-C to stop.');

  return new Promise<number>((res) => {
    let stopping = false;
    const stop = (why: string, code: number): void => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${why}: stopping code-server...`);
      void server.stop().then(() => res(code));
    };
    process.on('SIGINT', () => stop('Ctrl-C', 0));
    process.on('SIGTERM', () => stop('SIGTERM', 0));
    process.on('SIGHUP', () => stop('SIGHUP', 0));
    void server.exited.then((code) => {
      if (!stopping) {
        console.log(`code-server exited by itself (${code}):\n${server.logTail()}`);
        stop('code-server ended', 1);
      }
    });
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`npm start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
