/**
 * Podman 4's docker API answers `POST /commit` without a request body with a 500, "Decode(): EOF"
 * (containers/podman#26261), and docker clients since version 24 send none, so `docker commit`
 * cannot work against the harness's podman service as it is. Docker Engine takes an empty body.
 * This proxy sits between the real docker client and the real podman service and adds the `{}`
 * Docker Engine would assume to an empty commit request; every other request passes as it is.
 * The commit itself is podman's. A test that wants to see what a Podman 4 user meets talks to
 * the service directly instead.
 */
import { request, createServer, type IncomingMessage, type Server } from 'node:http';
import { rmSync } from 'node:fs';

export interface CommitBodyProxy {
  /** `unix://<path>`, for DOCKER_HOST. */
  readonly dockerHost: string;
  /** How many commit requests it gave a body. */
  readonly commitsFixed: () => number;
  close(): Promise<void>;
}

const COMMIT_PATH = /^(\/v[\d.]+)?\/commit(\?|$)/;

export async function startCommitBodyProxy(upstreamDockerHost: string, socketPath: string): Promise<CommitBodyProxy> {
  const upstream = upstreamDockerHost.replace(/^unix:\/\//, '');
  let fixed = 0;
  const server: Server = createServer((req, res) => {
    void bodyFor(req).then((body) => {
      const headers = { ...req.headers };
      if (body !== undefined) {
        fixed += 1;
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(body.length);
        delete headers['transfer-encoding'];
      }
      const forward = request({ socketPath: upstream, method: req.method, path: req.url, headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', (error) => res.destroy(error));
      if (body !== undefined) forward.end(body);
      else req.pipe(forward);
    });
  });
  // Attach and exec hijack the connection; the tests run those against the service directly.
  server.on('upgrade', (_req, socket) => socket.destroy());
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  return {
    dockerHost: `unix://${socketPath}`,
    commitsFixed: () => fixed,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** `{}` for an empty commit request; undefined (stream it through) for anything else. */
async function bodyFor(req: IncomingMessage): Promise<Buffer | undefined> {
  if (req.method !== 'POST' || !COMMIT_PATH.test(req.url ?? '')) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return body.length === 0 ? Buffer.from('{}') : body;
}
