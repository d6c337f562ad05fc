/**
 * A stand-in for an extension host with a tool running: builds the core's Services on the state
 * folder in argv[2], starts `sh` through its runner (the shell writes its pid, which is its process
 * group's id, to argv[3], then waits on a long sleep), and then, as argv[4] says, exits normally
 * (`exit`) or waits to be killed (`wait`).
 */
import { existsSync } from 'node:fs';
import { silentLog } from '../../src/core/log';
import { Services } from '../../src/core/services';

const [stateRoot, pidFile, ending] = process.argv.slice(2);
const services = new Services(
  { paths: { smolvm: '', docker: '', crane: '', skopeo: '', registry: '' }, stateDir: stateRoot, machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1' },
  { main: silentLog, tools: silentLog },
);
void services.run(['sh', '-c', `echo $$ > '${pidFile}.tmp' && mv '${pidFile}.tmp' '${pidFile}' && exec sleep 300`]).catch(() => undefined);
const started = setInterval(() => {
  if (!existsSync(pidFile)) return;
  clearInterval(started);
  process.stdout.write('STARTED\n');
  if (ending === 'exit') process.exit(0);
}, 10);
