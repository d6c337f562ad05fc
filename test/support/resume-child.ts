/**
 * A stand-in for an extension host that dies mid-resume: resumes the snapshot of argv[3] as bottle
 * argv[4], with the settings given as JSON in argv[2], and prints `STEP <id>` as each step starts,
 * so the test can SIGKILL it there.
 */
import { silentLog } from '../../src/core/log';
import { resumeBottle } from '../../src/core/resume';
import { Services } from '../../src/core/services';
import type { CoreSettings } from '../../src/core/settings';

const [settingsJson, slug, asSlug] = process.argv.slice(2);
const services = new Services(JSON.parse(settingsJson) as CoreSettings, { main: silentLog, tools: silentLog });
const snapshot = await services.store.readSnapshot(slug);
if (!snapshot) throw new Error(`no snapshot of ${slug}`);
let last = '';
await resumeBottle(services, snapshot, {
  signal: new AbortController().signal,
  asSlug,
  onProgress: (p) => {
    if (p.stepId === last) return;
    last = p.stepId;
    process.stdout.write(`STEP ${p.stepId}\n`);
  },
});
process.stdout.write('DONE\n');
