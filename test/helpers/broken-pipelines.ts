/**
 * A PipelineCache that compiles a mutant in place of the shader holding `find` (a deliberately
 * broken kernel, for tests that show the kernel checks catch it); every other pipeline comes from the
 * device's shared cache, so the real kernels are compiled once for all mutants. Pass it to
 * Engine.create({ pipelines }).
 */
import { PipelineCache } from '../../src/gpu/dispatch.ts';

export class BrokenPipelines extends PipelineCache {
  /** How many pipelines were compiled from the mutant (0: the find string matched nothing compiled). */
  applied = 0;

  constructor(device: GPUDevice, private readonly find: string, private readonly replacement: string) {
    super(device);
  }

  override get(code: string, entry: string, constants: Record<string, number | boolean> = {}): Promise<GPUComputePipeline> {
    if (code.includes(this.find)) {
      this.applied++;
      return super.get(code.replace(this.find, this.replacement), entry, constants);
    }
    return PipelineCache.of(this.device).get(code, entry, constants);
  }
}
