// Every scenario, by name, in run order. A scenario is `async (ctx, tools) => { title, description, rows, errors }`;
// later ones (tree backup, mount reads and writes) slot in here.
import { imageScenario } from './image.mjs';

export const SCENARIOS = { image: imageScenario };
