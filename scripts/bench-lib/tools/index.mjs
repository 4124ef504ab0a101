// Every tool the bench compares, by name, in column order. pbsfs comes first: the ratio columns divide by the others.
import { borg } from './borg.mjs';
import { pbsfs } from './pbsfs.mjs';
import { restic } from './restic.mjs';

export const TOOLS = { pbsfs, restic, borg };
