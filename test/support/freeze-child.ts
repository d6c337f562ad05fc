/**
 * A stand-in for an extension host that dies mid-freeze: freezes a bottle with the settings given as
 * JSON in argv[2] and prints `STEP <id>` as each step starts, so the test can SIGKILL it there.
 */
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { silentLog } from '../../src/core/log';
import { Services } from '../../src/core/services';
import type { CoreSettings } from '../../src/core/settings';

const [settingsJson, slug] = process.argv.slice(2);
const services = new Services(JSON.parse(settingsJson) as CoreSettings, { main: silentLog, tools: silentLog });
let last = '';
await freezeBottle(services, slug, {
  signal: new AbortController().signal,
  onProgress: (p) => {
    if (p.stepId === last) return;
    last = p.stepId;
    process.stdout.write(`STEP ${p.stepId}\n`);
  },
});
process.stdout.write('DONE\n');
