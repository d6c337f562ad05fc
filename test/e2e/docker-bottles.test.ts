// The packaged extension in code-server lists a bottle of bot-bottle's docker backend (a real
// container on the podman service, reached by the real docker client) next to the stand-in's
// smolmachines bottles.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activityBarItem, openView, treeItem, waitForViewContent } from '../vscode/browser';
import { startContainerService, type ContainerService } from '../support/containers';
import { useWorkbench } from './support';

const IMAGE = 'bb-busybox-e2e:1';

describe('docker bottles in a real VS Code', function () {
  let containers: ContainerService;
  const context = mkdtempSync(join(tmpdir(), 'bb-e2e-image-'));
  const engine = (...args: string[]) => execFileSync('docker', args, { env: { ...process.env, ...containers.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  before(async () => {
    containers = await startContainerService();
    mkdirSync(join(context, 'bin'));
    copyFileSync('/bin/busybox', join(context, 'bin', 'busybox'));
    chmodSync(join(context, 'bin', 'busybox'), 0o755);
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY bin /bin\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sleep", "3600"]\n');
    engine('build', '--tag', IMAGE, context);
    engine('run', '--detach', '--name', 'bot-bottle-web-e2e01', IMAGE);
  });
  after(async () => {
    await containers?.stop();
    rmSync(context, { recursive: true, force: true });
  });

  const wb = useWorkbench(() => ({ demo: true, env: { ...containers.env }, settings: { 'botBottle.refreshInterval': 0 } }));

  it('shows the docker bottle, running, with its image, beside the smolmachines bottles', async () => {
    const { page } = wb();
    await activityBarItem(page, 'Bot Bottle').waitFor({ timeout: 60_000 });
    await openView(page, 'Bot Bottle');
    await waitForViewContent(page);
    await treeItem(page, /^demo-api.*running/).waitFor({ timeout: 30_000 });
    await treeItem(page, /^web-e2e01.*docker · running · \S*bb-busybox-e2e:1/).waitFor({ timeout: 30_000 });
  });
});
