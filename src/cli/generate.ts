/**
 * `gradcam generate [NAME|all]`: writes the models the project generates itself (GoogLeNet
 * topologies with seeded weights, see weights/generate/) into weights/generated/ and prints their
 * paths, one per line.
 */
import { ensureGeneratedModel, GENERATED_MODELS } from '../../weights/generate/index.ts';
import { type Command, positionals } from './command.ts';

export const generate: Command = {
  name: 'generate',
  summary: 'write the generated test models (seeded GoogLeNets) into weights/generated/',
  usage: 'gradcam generate [NAME|all] [--force]',
  help: `options:
  --force   rebuild files that are already there

models:
${Object.entries(GENERATED_MODELS).map(([name, s]) => `  ${name}\n      ${s.description}`).join('\n')}`,
  options: { force: { type: 'boolean' } },
  async run(args, io) {
    const [which = 'all'] = positionals(generate, args, 0, 1, 'the model name');
    const names = which === 'all' ? Object.keys(GENERATED_MODELS) : [which];
    for (const name of names) {
      const path = await ensureGeneratedModel(name, { force: args.values.force === true, log: (l) => io.info(`gradcam: ${l}`) });
      io.out(path);
    }
  },
};
