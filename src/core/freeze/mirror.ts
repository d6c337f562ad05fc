/**
 * The last freeze step: leave the new snapshot where `bot-bottle resume <slug>` looks, as bot-bottle's
 * own commit would. The extension's snapshot stays in its own folder, so bot-bottle deleting its
 * state folder on a clean exit never loses it.
 */
import { botBottleSlugProblem } from '../botBottleState';
import type { Step } from '../pipeline';
import type { FreezeState } from './context';

export const leaveForBotBottle: Step<FreezeState> = {
  id: 'bot-bottle',
  title: 'Leaving the snapshot where bot-bottle looks',
  weight: 1,
  // Takes no signal: the snapshot is already kept, and linking it takes a moment.
  async run(ctx, s) {
    const slugIssue = botBottleSlugProblem(s.slug);
    if (slugIssue) return ctx.log.info(`${slugIssue} So bot-bottle cannot resume it, and nothing is left in its state folder.`);
    const snapshot = await s.store.readSnapshot(s.slug);
    if (!snapshot) throw new Error(`The snapshot of ${s.slug} is missing after it was kept.`);
    const named = await s.botBottle.leaveSnapshot(snapshot).catch((error: unknown) => {
      throw new Error(`${(error as Error).message} The snapshot is kept at ${snapshot.sidecar}, but bot-bottle resume ${s.slug} will not find it.`);
    });
    ctx.log.info(`bot-bottle resume ${s.slug} will boot ${named}.`);
  },
};
