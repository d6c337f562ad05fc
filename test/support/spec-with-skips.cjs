// The reporter the mocha suites name in their .mocharc.json: mocha loads a reporter with require()
// and wants the class itself, not an ES module (the class is in skips.ts, loaded through tsx).
/* global module, require */
// eslint-disable-next-line @typescript-eslint/no-require-imports
module.exports = require('./skips.ts').SpecWithSkips;
