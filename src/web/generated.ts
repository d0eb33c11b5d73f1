/**
 * The manifest's 'generated' models, built in the page by the project's generator modules (the
 * same code and seeds as weights/generate/index.ts, which is Node-only). Each generator is loaded
 * only when its model is picked (a separate chunk of the bundle).
 */
import type { OnnxModel } from '../onnx/model.ts';

const GENERATORS: Record<string, () => Promise<OnnxModel>> = {
  'googlenet-known-answer': async () => (await import('../../weights/generate/googlenet-known-answer.ts')).googlenetKnownAnswer(),
  'googlenet-zoo-seeded': async () => (await import('../../weights/generate/googlenet-zoo.ts')).googlenetZoo(1),
  'googlenet-torchvision-seeded': async () => (await import('../../weights/generate/googlenet-torchvision.ts')).googlenetTorchvision(2),
};

export function canGenerate(name: string): boolean {
  return name in GENERATORS;
}

export async function generateModel(name: string): Promise<OnnxModel> {
  const build = GENERATORS[name];
  if (!build) throw new Error(`the page cannot build the generated model '${name}' (it knows: ${Object.keys(GENERATORS).join(', ')})`);
  return build();
}
