/** `smolvm sim ...`: helpers that real smolvm does not have (demo bottles, forcing a state). */
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, usage, value, type CommandSpec } from './args';
import { createCommand, startCommand } from './machine';
import { validateName } from './names';
import { out } from './output';
import { machineDir, readRecord, requireRecord, rootfsDir } from './state';

const DEMO_BOTTLES: Array<{ name: string; project: string }> = [
  { name: 'bot-bottle-demo-api', project: 'api' },
  { name: 'bot-bottle-demo-docs', project: 'docs' },
];
const DEMO_IMAGE = 'localhost:5000/bot-bottle/demo:latest';
const STATES = ['created', 'running', 'stopped', 'failed', 'unreachable', 'frozen'];

const SIM_SPEC: CommandSpec = {
  usage: 'smolvm sim <demo|set-state>',
  about: 'Stand-in helpers: `sim demo` creates and starts two demo bottles; `sim set-state --name N STATE|clear` forces a state',
  options: [],
};

const SET_STATE_SPEC: CommandSpec = {
  usage: 'smolvm sim set-state --name <NAME> <STATE>',
  about: `Force the state a machine reports (${STATES.join(', ')}), or \`clear\` the override`,
  options: [{ long: 'name', short: 'n', value: 'NAME' }],
  positionals: ['<STATE>'],
  required: ['name'],
};

export async function simCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'demo') return createDemoBottles();
  if (sub === 'set-state') return setState(rest);
  throw usage(SIM_SPEC, sub ? `unrecognized subcommand '${sub}'` : "'smolvm sim' requires a subcommand but one was not provided");
}

async function createDemoBottles(): Promise<void> {
  for (const bottle of DEMO_BOTTLES) {
    if (!readRecord(bottle.name)) {
      await createCommand(['--name', bottle.name, '--image', DEMO_IMAGE, '--cpus', '2', '--mem', '2048', '--net']);
      writeDemoProject(bottle.name, bottle.project);
    }
    if (readRecord(bottle.name)?.state !== 'running') await startCommand(['--name', bottle.name]);
  }
}

function writeDemoProject(name: string, project: string): void {
  const dir = join(rootfsDir(name), 'home/node', project);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'README.md'), `# ${project}\n\nDemo bottle ${name}.\n`);
  chownSync(dir, 1000, 1000);
  chownSync(join(dir, 'README.md'), 1000, 1000);
}

function setState(argv: string[]): void {
  const parsed = parseArgs(SET_STATE_SPEC, argv);
  const name = validateName(value(parsed, 'name') as string);
  const state = parsed.positionals[0];
  requireRecord(name);
  const file = join(machineDir(name), 'state-override');
  if (state === 'clear') {
    if (existsSync(file)) rmSync(file);
    out(`Cleared the state override of ${name}`);
    return;
  }
  if (!STATES.includes(state)) throw usage(SET_STATE_SPEC, `invalid value '${state}' for '<STATE>': expected one of ${STATES.join(', ')}, clear`);
  writeFileSync(file, `${state}\n`);
  out(`Machine '${name}' now reports state: ${state}`);
}
