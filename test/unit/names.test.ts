import assert from 'node:assert/strict';
import { UserError } from '../../src/core/errors';
import { committedImageRef, committedTag, machineName, slugOf, validatePrefix, validateSlug } from '../../src/core/names';
import { hostPathForCopy, machineNameProblem } from '../../src/core/tools/smolvmRules';

describe('names', () => {
  describe('machine names smolvm accepts', () => {
    for (const name of ['a', 'bot-bottle-x', 'A_b-9', '9lives', 'a'.repeat(128), 'x_']) {
      it(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, () => {
        assert.equal(machineNameProblem(name), undefined);
      });
    }
  });

  describe('machine names smolvm refuses, each with its own message', () => {
    const cases: Array<[string, string]> = [
      ['', 'Machine name is empty.'],
      ['a'.repeat(129), 'Machine name is 129 characters long; smolvm allows at most 128.'],
      ['-lead', 'Machine name "-lead" must start with a letter or digit.'],
      ['_lead', 'Machine name "_lead" must start with a letter or digit.'],
      ['trail-', 'Machine name "trail-" must not end in "-".'],
      ['a--b', 'Machine name "a--b" must not contain "--".'],
      ['has space', 'Machine name "has space" contains a space; smolvm allows only letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".'],
      ['bad;rm', 'Machine name "bad;rm" contains ";"; smolvm allows only letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".'],
      ['café', 'Machine name "café" contains "é"; smolvm allows only letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".'],
      ['a$(x)', 'Machine name "a$(x)" contains "$"; smolvm allows only letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".'],
      ['tab\there', 'Machine name "tab\there" contains a control character (U+0009); smolvm allows only letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".'],
      ['a.b', 'Machine name "a.b" contains "."; smolvm allows only letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--".'],
    ];
    for (const [name, message] of cases) {
      it(`refuses ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, () => {
        assert.equal(machineNameProblem(name), message);
      });
    }
  });

  it('joins prefix and slug, and refuses a slug that would make a bad machine name', () => {
    assert.equal(machineName('api'), 'bot-bottle-api');
    assert.equal(machineName('api', 'bb-'), 'bb-api');
    assert.throws(() => validateSlug('-x'), (e: Error) => e instanceof UserError && e.message === 'Bottle name "-x" cannot be used: Machine name "bot-bottle--x" must not contain "--".');
    assert.throws(() => validateSlug(''), /Bottle name is empty\./);
    assert.throws(() => machineName('x'.repeat(118)), /129 characters long/);
  });

  it('reads the slug back from a machine name, ignoring machines that are not bottles', () => {
    assert.equal(slugOf('bot-bottle-api'), 'api');
    assert.equal(slugOf('bot-bottle-'), undefined);
    assert.equal(slugOf('other-vm'), undefined);
    assert.equal(slugOf('bb-x', 'bb-'), 'x');
  });

  it('refuses a prefix smolvm could not use', () => {
    assert.equal(validatePrefix('bot-bottle-'), 'bot-bottle-');
    assert.throws(() => validatePrefix('bad prefix'), /Machine prefix "bad prefix" is not usable/);
    assert.throws(() => validatePrefix('-x'), /not usable/);
  });

  it('names the committed image and its registry tag as the seed does', () => {
    assert.equal(committedImageRef('api'), 'bot-bottle-committed-api:latest');
    assert.equal(committedImageRef('My_Api'), 'bot-bottle-committed-my_api:latest');
    assert.equal(committedTag('sha256:0123456789abcdef0123456789abcdef'), '0123456789abcdef');
    assert.throws(() => committedTag('not-an-id'), /"not-an-id" is not an image id\./);
  });

  it('refuses a host path with ":" for machine cp', () => {
    assert.equal(hostPathForCopy('/tmp/a b/rootfs.tar.gz'), '/tmp/a b/rootfs.tar.gz');
    assert.throws(() => hostPathForCopy('/tmp/a:b/x'), /contains ":", which smolvm machine cp would read as a machine name/);
  });
});
