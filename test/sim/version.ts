/** The smolvm release whose CLI this stand-in follows (see /work/shared/docs/smolvm-cli.md). */
export const SIM_VERSION = '1.9.2';
