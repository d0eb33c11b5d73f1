/**
 * Adapter and device acquisition, the same for the browser (navigator.gpu) and Node (Dawn, see
 * node.ts). The device asks for the adapter's largest buffer limits (GoogLeNet's biggest storage is
 * about 3 MB per image, but a batch or a K-class gradient can be much larger) and for
 * 'timestamp-query' when the adapter has it (per-kernel profiles, stage timings).
 */
import { GradcamError } from '../errors.ts';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a CPU implementation (SwiftShader, lavapipe, WARP). */
  isSoftware: boolean;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterSummary;
  features: { timestamps: boolean; subgroups: boolean; f16: boolean };
  /** Set when the device is lost (the engine must be re-created). */
  lost: Promise<GPUDeviceLostInfo>;
  /** The object that owns the native instance (Dawn in Node): kept referenced while the device lives. */
  owner: unknown;
}

export function summarizeAdapter(info: GPUAdapterInfo): AdapterSummary {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return {
    vendor: info.vendor || 'unknown',
    architecture: info.architecture || 'unknown',
    device: info.device || '',
    description: info.description || '',
    isSoftware: /swiftshader|llvmpipe|lavapipe|warp|software/.test(text),
  };
}

export function describeAdapter(a: AdapterSummary): string {
  const parts = [a.vendor, a.architecture, a.description || a.device].filter((p) => p && p !== 'unknown');
  return [...new Set(parts)].join(' / ') || 'unknown adapter';
}

/** Requests a device from a GPU object (navigator.gpu or Dawn's). Throws GradcamError when there is none. */
export async function requestGpu(gpu: GPU | undefined, owner: unknown = gpu, adapterIn?: GPUAdapter): Promise<GpuContext> {
  if (!gpu) {
    throw new GradcamError('WebGPU is not available here (navigator.gpu is missing)',
      'Use a browser with WebGPU: Chrome or Edge 113+, Safari 26+, or Firefox 141+ (Windows).');
  }
  const adapter = adapterIn ?? (await gpu.requestAdapter({ powerPreference: 'high-performance' }));
  if (!adapter) throw new GradcamError('no WebGPU adapter was found', 'Install or enable a GPU driver, or use a browser with WebGPU enabled.');
  const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups', 'shader-f16'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const lim = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(lim.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
      maxComputeInvocationsPerWorkgroup: Math.min(lim.maxComputeInvocationsPerWorkgroup, 256),
      maxComputeWorkgroupSizeX: Math.min(lim.maxComputeWorkgroupSizeX, 256),
      maxComputeWorkgroupSizeY: Math.min(lim.maxComputeWorkgroupSizeY, 256),
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
    },
  });
  return {
    device,
    adapter: summarizeAdapter(adapter.info),
    features: {
      timestamps: device.features.has('timestamp-query'),
      subgroups: device.features.has('subgroups'),
      f16: device.features.has('shader-f16'),
    },
    lost: device.lost,
    owner,
  };
}
