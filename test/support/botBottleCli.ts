/**
 * A test double of the `bot-bottle` CLI, written from the contract in freeze-pipeline.md ("bot-bottle's
 * own files") and from nothing in src/: what its launch, commit, clean exit and `resume <slug>` do to
 * `~/.bot-bottle/state/<slug>/`. `resume` boots nothing: it says what it would boot from.
 *
 * As a program: `node --import tsx test/support/botBottleCli.ts resume <slug>` prints that as JSON
 * (exit 1 with a message on stderr when bot-bottle would refuse).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export type BootSource =
  | { from: 'smolmachine'; path: string }
  | { from: 'image'; tag: string }
  | { from: 'fresh' };

export interface ResumePlan {
  slug: string;
  backend: 'docker' | 'smolmachines';
  label?: string;
  boot: BootSource;
}

export interface BotBottleDouble {
  stateDir(slug: string): string;
  /** A launch writes metadata.json and clears .preserve. */
  launch(slug: string, metadata: Record<string, unknown>): void;
  /** The smolmachines commit: the artifact, then committed-image, then .preserve. */
  commitSmolmachine(slug: string, packedFrom: string): string;
  /** A session that ends cleanly deletes its whole folder unless .preserve is there. */
  cleanExit(slug: string): void;
  resume(slug: string, imageExists?: (tag: string) => boolean): ResumePlan;
}

export function botBottleDouble(home = homedir()): BotBottleDouble {
  const stateDir = (slug: string) => join(home, '.bot-bottle', 'state', slug);
  return {
    stateDir,
    launch(slug, metadata) {
      mkdirSync(stateDir(slug), { recursive: true });
      writeFileSync(join(stateDir(slug), 'metadata.json'), JSON.stringify(metadata));
      rmSync(join(stateDir(slug), '.preserve'), { force: true });
    },
    commitSmolmachine(slug, packedFrom) {
      const artifact = join(stateDir(slug), 'committed-smolmachine.smolmachine');
      copyFileSync(packedFrom, artifact);
      writeFileSync(join(stateDir(slug), 'committed-image'), artifact);
      writeFileSync(join(stateDir(slug), '.preserve'), '');
      return artifact;
    },
    cleanExit(slug) {
      if (!existsSync(join(stateDir(slug), '.preserve'))) rmSync(stateDir(slug), { recursive: true, force: true });
    },
    resume(slug, imageExists = () => false) {
      const metadataPath = join(stateDir(slug), 'metadata.json');
      if (!existsSync(metadataPath)) throw new Error(`bot-bottle: no bottle "${slug}" to resume (${metadataPath} is missing)`);
      const metadata = JSON.parse(readFileSync(metadataPath, 'utf8')) as Record<string, unknown>;
      const backend = metadata.backend === 'smolmachines' ? 'smolmachines' : 'docker';
      const label = typeof metadata.label === 'string' ? metadata.label : undefined;
      return { slug, backend, label, boot: bootSource(stateDir(slug), imageExists) };
    },
  };
}

/** committed-image names an existing file (smolmachines) or an existing image (docker); else a fresh start. */
function bootSource(dir: string, imageExists: (tag: string) => boolean): BootSource {
  const file = join(dir, 'committed-image');
  if (!existsSync(file)) return { from: 'fresh' };
  const named = readFileSync(file, 'utf8').trim();
  if (named.startsWith('/')) return existsSync(named) ? { from: 'smolmachine', path: named } : { from: 'fresh' };
  return named && imageExists(named) ? { from: 'image', tag: named } : { from: 'fresh' };
}

/** Whether the docker engine (DOCKER_HOST as it is) has the image: what bot-bottle's docker resume checks. */
function imageInEngine(tag: string): boolean {
  return spawnSync('docker', ['image', 'inspect', tag], { stdio: 'ignore' }).status === 0;
}

function main(argv: string[]): void {
  const [command, slug] = argv;
  if (command !== 'resume' || !slug) {
    process.stderr.write('usage: bot-bottle resume <slug>\n');
    process.exit(2);
  }
  try {
    process.stdout.write(`${JSON.stringify(botBottleDouble().resume(slug, imageInEngine))}\n`);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
