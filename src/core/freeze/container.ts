/**
 * Freezing a bottle of bot-bottle's docker backend the way its own commit does: `docker commit` of
 * the container `<prefix><slug>` to `bot-bottle-committed-<slug>:latest`, then `committed-image`
 * naming that tag and `.preserve` in bot-bottle's state folder, so that `bot-bottle resume <slug>`
 * boots it. The commit goes to a temporary tag first: the last good image keeps the real tag until
 * the new one is whole, and a failed or cancelled freeze leaves it as it was.
 */
import { randomBytes } from 'node:crypto';
import { botBottleSlugProblem, type BotBottleState } from '../botBottleState';
import { ToolError, UserError } from '../errors';
import type { Log } from '../log';
import { botBottleCommitTag, validateSlug } from '../names';
import { CLEANUP_TIMEOUT_MS, runPipeline, type Step } from '../pipeline';
import { runTool, type Runner } from '../run';
import type { Services } from '../services';
import * as docker from '../tools/docker';
import type { FreezeOptions } from './smolmachines';

/** What a docker bottle's freeze made: an image in the engine, not a file. */
export interface CommittedImage {
  slug: string;
  container: string;
  /** `bot-bottle-committed-<slug>:latest` */
  tag: string;
  /** `sha256:<64 hex>` */
  imageId: string;
}

export interface CommitState {
  readonly slug: string;
  readonly container: string;
  readonly tag: string;
  readonly dockerBin: string;
  readonly run: Runner;
  readonly botBottle: BotBottleState;
  /** The temporary tag the commit writes to, kept only until the real tag points at it. */
  readonly stagingTag: string;
  imageId?: string;
}

type CommitStep = Step<CommitState>;

/** podman's docker API (4.x) answers a commit request without a body this way; docker clients since 24 send none. */
const PODMAN_EMPTY_BODY = 'Decode(): EOF';

export const checkContainer: CommitStep = {
  id: 'probe',
  title: 'Checking that the container is there',
  weight: 1,
  async run(ctx, s) {
    const version = await runTool(s.run, docker.version(s.dockerBin), { signal: ctx.signal });
    if (!version.server)
      throw new UserError(`The docker engine does not answer, so ${s.container} cannot be committed: ${version.serverError} Start Docker (or Podman's docker API service), then freeze again.`);
    const state = await runTool(s.run, docker.containerState(s.dockerBin, s.container), { signal: ctx.signal });
    if (state === undefined) throw new UserError(`There is no container ${s.container} any more: the docker engine lists none of that name. Refresh the Bottles view.`);
  },
};

export const commitContainer: CommitStep = {
  id: 'commit',
  title: 'Committing the container',
  weight: 20,
  async run(ctx, s) {
    ctx.defer('remove the temporary tag', () => runTool(s.run, docker.rmi(s.dockerBin, s.stagingTag), { timeoutMs: CLEANUP_TIMEOUT_MS }));
    s.imageId = await runTool(s.run, docker.commit(s.dockerBin, s.container, s.stagingTag), { signal: ctx.signal }).catch((error: unknown) => {
      throw error instanceof ToolError && error.stderrTail.includes(PODMAN_EMPTY_BODY) ? podmanCommitError(error, s) : error;
    });
  },
};

function podmanCommitError(error: ToolError, s: CommitState): ToolError {
  return new ToolError(
    error.command,
    error.exitCode,
    error.stderrTail,
    `The engine refused docker commit ("${PODMAN_EMPTY_BODY}"): this Podman's docker API needs a request body that docker clients since version 24 no longer send (containers/podman#26261). ` +
      `Freeze with Docker Engine, or run podman commit ${s.container} ${s.tag} yourself.`,
  );
}

export const keepImage: CommitStep = {
  id: 'keep',
  title: 'Keeping the image',
  weight: 1,
  async run(ctx, s) {
    await runTool(s.run, docker.tagImage(s.dockerBin, s.stagingTag, s.tag), { signal: ctx.signal });
  },
};

export const leaveTagForBotBottle: CommitStep = {
  id: 'bot-bottle',
  title: 'Leaving the image where bot-bottle looks',
  weight: 1,
  // Takes no signal: the image is already kept, and two small files take a moment.
  async run(ctx, s) {
    const slugIssue = botBottleSlugProblem(s.slug);
    if (slugIssue) return ctx.log.info(`${slugIssue} So bot-bottle cannot resume it, and nothing is left in its state folder.`);
    await s.botBottle.leaveCommittedTag(s.slug, s.tag).catch((error: unknown) => {
      throw new Error(`${(error as Error).message} The image is kept as ${s.tag}, but bot-bottle resume ${s.slug} will not find it.`);
    });
    ctx.log.info(`bot-bottle resume ${s.slug} will boot ${s.tag}.`);
  },
};

export const CONTAINER_FREEZE_STEPS: readonly CommitStep[] = [checkContainer, commitContainer, keepImage, leaveTagForBotBottle];

/** Why `tag` cannot be the committed image's tag; checked before anything runs. */
function checkedTag(slug: string): string {
  const tag = botBottleCommitTag(slug);
  const problem = docker.imageTagProblem(tag);
  if (problem) throw new UserError(`Bottle "${slug}" cannot be committed the way bot-bottle commits: ${tag} is not an image tag docker accepts (${problem}).`);
  return tag;
}

/** Freezes one docker bottle; one operation per bottle at a time, as for every freeze. */
export async function freezeContainer(services: Services, slug: string, options: FreezeOptions): Promise<CommittedImage> {
  validateSlug(slug, services.prefix);
  const tag = checkedTag(slug);
  const dockerBin = services.tool('docker');
  const log: Log = services.logs.main;
  const lock = await services.store.lock(slug, 'freeze');
  try {
    const state: CommitState = {
      slug,
      container: services.prefix + slug,
      tag,
      dockerBin,
      run: services.run,
      botBottle: services.botBottle,
      stagingTag: `${tag.slice(0, tag.lastIndexOf(':'))}:incoming-${randomBytes(6).toString('hex')}`,
    };
    log.info(`Freezing the container ${state.container} into ${tag}`);
    await runPipeline(CONTAINER_FREEZE_STEPS, state, { signal: options.signal, log, onProgress: options.onProgress });
    log.info(`Froze ${state.container} into the image ${tag} (${state.imageId}).`);
    return { slug, container: state.container, tag, imageId: state.imageId! };
  } finally {
    await lock.release();
  }
}
