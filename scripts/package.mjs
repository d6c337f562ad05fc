// `npm run package`: the VSIX users install, in dist-vsix/bot-bottle.vsix.
//
// VS Code's extension details page loads a README's pictures only from http(s) addresses: it drops
// relative image paths, even for an extension installed from a VSIX that holds the pictures. So a
// release names where its README's relative links are published, in README_BASE_URL (for example
// the repository's raw files at the release's tag); vsce then rewrites them to that address.
// Without it the links stay relative: right on GitHub and in CONTRIBUTING.md, and the details page
// shows the pictures' captions only.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import console from 'node:console';
import process from 'node:process';

const base = process.env.README_BASE_URL;
if (base && !/^https?:\/\/.+\/$/.test(base)) {
  console.error(`README_BASE_URL must be an http(s) address ending in "/" (it is ${JSON.stringify(base)})`);
  process.exit(2);
}
const links = base ? ['--baseContentUrl', base, '--baseImagesUrl', base] : ['--no-rewrite-relative-links'];
mkdirSync('dist-vsix', { recursive: true });
execFileSync('vsce', ['package', '--no-dependencies', '--allow-missing-repository', ...links, '--out', 'dist-vsix/bot-bottle.vsix'], { stdio: 'inherit' });
