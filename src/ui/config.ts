/** Typed access to the botBottle.* settings (settingsSource.ts decides when to re-read them). */
import * as vscode from 'vscode';
import { COMPRESSIONS, DEFAULT_SETTINGS, IMAGE_BUILDER_CHOICES, type Settings, type ToolName } from '../core/facade';

const SECTION = 'botBottle';

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration(SECTION);
  const text = (key: string, fallback: string) => config.get<string>(key, fallback).trim() || fallback;
  const path = (tool: ToolName) => text(`paths.${tool}`, DEFAULT_SETTINGS.paths[tool]);
  return {
    paths: { smolvm: path('smolvm'), docker: path('docker'), crane: path('crane'), skopeo: path('skopeo'), registry: path('registry'), botBottle: path('botBottle') },
    stateDir: text('stateDir', DEFAULT_SETTINGS.stateDir),
    machinePrefix: text('machinePrefix', DEFAULT_SETTINGS.machinePrefix),
    refreshInterval: Math.max(0, config.get<number>('refreshInterval', DEFAULT_SETTINGS.refreshInterval)),
    statusBarEnabled: config.get<boolean>('statusBar.enabled', DEFAULT_SETTINGS.statusBarEnabled),
    shell: text('shell', DEFAULT_SETTINGS.shell),
    pullHost: text('registry.pullHost', DEFAULT_SETTINGS.pullHost),
    imageBuilder: oneOf(IMAGE_BUILDER_CHOICES, config.get<string>('freeze.imageBuilder'), DEFAULT_SETTINGS.imageBuilder),
    compression: oneOf(COMPRESSIONS, config.get<string>('freeze.compression'), DEFAULT_SETTINGS.compression),
    snapshotsKeep: wholeAtLeastZero(config.get<number>('snapshots.keep'), DEFAULT_SETTINGS.snapshotsKeep),
    includeMounts: config.get<boolean>('freeze.includeMounts', DEFAULT_SETTINGS.includeMounts) === true,
    incremental: config.get<boolean>('freeze.incremental', DEFAULT_SETTINGS.incremental) === true,
  };
}

/** A hand-edited settings.json can hold anything; an unknown value falls back to the default. */
function oneOf<T extends string>(allowed: readonly T[], value: string | undefined, fallback: T): T {
  return allowed.find((candidate) => candidate === value) ?? fallback;
}

function wholeAtLeastZero(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, Math.floor(value)) : fallback;
}

/** Opens the Settings editor at one setting, for "set the path" buttons. */
export function openSetting(key: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.${key}`);
}
