// Every scenario, by name, in run order. A scenario is `async (ctx, tools) => { title, description, rows, errors }`;
// it gets a work dir and log dir of its own (ctx.workDir, ctx.logDir) and fresh tool adapters whose repositories live there.
import { imageScenario } from './image.mjs';
import { mountScenario } from './mount.mjs';
import { treeScenario } from './tree.mjs';

export const SCENARIOS = { image: imageScenario, tree: treeScenario, mount: mountScenario };
