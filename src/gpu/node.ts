/**
 * WebGPU in Node through Dawn (the `webgpu` npm package).
 *
 * On Linux without a GPU, the Vulkan loader finds no usable driver (Debian's Mesa lavapipe is too old
 * for Dawn and is refused). Debian's `chromium` package ships SwiftShader, a CPU Vulkan driver; we
 * point the loader at it (VK_ICD_FILENAMES, read when Dawn creates its Vulkan instance) and say so in
 * one line on stderr. A driver chosen by the user (VK_ICD_FILENAMES / VK_DRIVER_FILES) is respected.
 * GRADCAM_ADAPTER=swiftshader forces SwiftShader.
 *
 * Dawn's binding prints a device's uncaptured errors to stdout (printf, "validation:\n...") unless
 * a listener cancels the event: nodeGpu's listener does, and gives the text to `log` (stderr) instead.
 * Its device log ("warning:", "info:") is printed the same way with no hook at all: the CLI keeps it
 * off its results by running GPU commands in a child process (src/cli/main.ts).
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GradcamError } from '../errors.ts';
import { requestGpu, type GpuContext } from './device.ts';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

type DawnModule = { create(flags: string[]): GPU; globals: object };

async function loadDawn(): Promise<DawnModule> {
  try {
    return (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw new GradcamError(`cannot load Dawn (the 'webgpu' package): ${(e as Error).message}`, 'Run `npm ci` in the project folder.');
  }
}

/** True when this Linux machine shows a GPU device node (DRM render node or NVIDIA). */
function linuxHasGpuDevice(): boolean {
  try {
    if (readdirSync('/dev/dri').some((f) => f.startsWith('renderD'))) return true;
  } catch { /* no /dev/dri */ }
  return existsSync('/dev/nvidia0');
}

function useSwiftShader(): void {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}

/** Acquires a WebGPU device in Node. `log` gets the one line that says SwiftShader is used. */
export async function nodeGpu(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<GpuContext> {
  const dawn = await loadDawn();
  Object.assign(globalThis, dawn.globals);
  if (process.platform === 'linux' && !process.env.XDG_RUNTIME_DIR) {
    // The Vulkan loader complains without it; any private writable folder will do. One level only
    // (no recursive mkdir: it never returns under /proc), and without it the loader just complains.
    const dir = join(tmpdir(), `gradcam-xdg-${process.getuid?.() ?? 0}`);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch { /* there already, or TMPDIR is unusable */ }
    if (existsSync(dir)) process.env.XDG_RUNTIME_DIR = dir;
  }
  const userChoseDriver = !!(process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES);
  const force = process.env.GRADCAM_ADAPTER?.toLowerCase() === 'swiftshader';
  const haveSwiftShader = process.platform === 'linux' && existsSync(SWIFTSHADER_ICD);
  let announced = false;
  const announce = () => {
    if (!announced) log(`gradcam: no GPU found; using SwiftShader (CPU Vulkan) from ${SWIFTSHADER_ICD}`);
    announced = true;
  };
  if ((force || (process.platform === 'linux' && !userChoseDriver && !linuxHasGpuDevice())) && haveSwiftShader) {
    useSwiftShader();
    announce();
  }

  // Extra Dawn flags for experiments, e.g. GRADCAM_DAWN_FLAGS='enable-dawn-features=disable_robustness'.
  const flags = (process.env.GRADCAM_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
  let gpu = dawn.create(flags);
  let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter && haveSwiftShader && !announced && !userChoseDriver) {
    useSwiftShader();
    announce();
    gpu = dawn.create(flags);
    adapter = await gpu.requestAdapter();
  }
  if (!adapter) {
    const hint = process.platform === 'linux'
      ? 'Install a Vulkan GPU driver, or the CPU fallback: `sudo apt-get install chromium libvulkan1` (SwiftShader ships with Debian\'s chromium).'
      : 'Install or update the GPU driver (Dawn uses Metal on macOS, D3D12 on Windows).';
    const libvk = process.platform === 'linux' && !existsSync('/usr/lib/x86_64-linux-gnu/libvulkan.so.1') && !existsSync('/usr/lib/aarch64-linux-gnu/libvulkan.so.1')
      ? ' (the Vulkan loader libvulkan.so.1 is missing)' : '';
    throw new GradcamError(`no WebGPU adapter was found${libvk}`, hint);
  }
  // `gpu` owns Dawn's instance: the context keeps it referenced for as long as the device is used.
  const context = await requestGpu(gpu, gpu, adapter);
  opened.add(context.device);
  context.device.addEventListener('uncapturederror', (event) => {
    event.preventDefault(); // else Dawn prints it to stdout
    const e = (event as GPUUncapturedErrorEvent).error;
    const kind = e instanceof GPUValidationError ? 'validation error' : e instanceof GPUOutOfMemoryError ? 'out of memory' : 'internal error';
    log(`gradcam: WebGPU ${kind}: ${e.message.trim().replace(/\s*\n\s*/g, ' ')}`);
  });
  return context;
}

/** The devices nodeGpu made, for releaseNodeGpus. */
const opened = new Set<GPUDevice>();

/**
 * Waits for each device nodeGpu made to finish its work (at most `waitMs`), then destroys it. For a
 * process about to exit: SwiftShader's worker threads keep running for a moment after the GPU's last
 * work, and a process.exit() in that moment tore SwiftShader down under them (SIGSEGV at exit, ~1 run in
 * 10 of a CLI run cancelled right after a batch of passes: a core showed a SwiftShader thread crashing
 * while the main thread ran the exit handlers). Destroying the device first joins them.
 */
export async function releaseNodeGpus(waitMs = 10_000): Promise<void> {
  for (const device of opened) {
    opened.delete(device);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([device.queue.onSubmittedWorkDone().catch(() => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs); })]);
    clearTimeout(timer);
    device.destroy();
  }
}
