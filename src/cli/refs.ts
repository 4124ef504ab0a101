// Turns command-line words into typed references: SNAPSHOT = type/id/time, GROUP = type/id, plus --ns.
import { parseGroupPath, parseNamespace, parseSnapshotPath } from '../datastore/names.js';
import type { BackupNamespace, GroupRef, SnapshotRef } from '../types.js';

export function nsOf(opts: { ns?: string }): BackupNamespace {
  return parseNamespace(opts.ns ?? '');
}

export function snapshotArg(text: string, opts: { ns?: string }): SnapshotRef {
  return { ns: nsOf(opts), ...parseSnapshotPath(text) };
}

export function groupArg(text: string, opts: { ns?: string }): GroupRef {
  return { ns: nsOf(opts), ...parseGroupPath(text) };
}
