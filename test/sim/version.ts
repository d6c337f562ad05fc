/** The smolvm release whose source this stand-in follows (Cargo.toml:23 at tag v1.9.3). */
export const SIM_VERSION = '1.9.3';
