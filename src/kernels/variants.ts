/**
 * The convolution's kernel variants as data: one table (CONV_VARIANTS) of named ways to compute a
 * conv layer's forward pass or data gradient, each with the layer shapes it applies to and what it
 * costs; the fixed rules that pick one per layer and direction by default (convLowering, by the
 * adapter's kernel family 'cpu' / 'gpu'); and a per-layer plan that overrides them by name, from the
 * API (`variant`, `plan`, `tune`), the CLI (--variant, --plan, --tune) and the bench (--variant).
 *
 * A plan is JSON: { "<conv layer name>": { "forward": "<variant>", "backward": "<variant>" }, … };
 * either direction may be left out (the fixed rules, or `variant`, choose it). Every variant computes
 * the same sums: only their order and Winograd's transforms differ, inside the float32 bounds that
 * test/conv-variants.test.ts states per variant.
 */
import { GradcamError } from '../errors.ts';
import type { KernelVariant } from '../gpu/dispatch.ts';
import type { ConvOp } from '../ops/conv.ts';

export type Direction = 'forward' | 'backward';

/** What a variant's applicability reads of a layer (a ConvOp is one). */
export type ConvShape = Pick<ConvOp, 'kh' | 'kw' | 'strideH' | 'strideW' | 'pads' | 'dilations' | 'group' | 'cIn' | 'cOut'>;

export interface ConvVariant {
  name: string;
  /** The kernel(s) and the way threads map to outputs, in a line. */
  summary: string;
  /** When it wins and what it wastes: the notes a tuner's reader needs. */
  cost: string;
  applies(shape: ConvShape, direction: Direction): boolean;
}

const pointwise = (s: ConvShape) => s.kh === 1 && s.kw === 1 && s.strideH === 1 && s.strideW === 1 && s.pads.every((p) => p === 0);

/** The data gradient's pads [top, left, bottom, right] as a 3×3 convolution of dy: 2 − pad. */
export const gradientPads = (pads: readonly number[]): [number, number, number, number] =>
  [2 - pads[0], 2 - pads[1], 2 - pads[2], 2 - pads[3]];

/** 3×3, stride 1, dilation 1, ungrouped: Winograd F(2×2, 3×3)'s layers (the data gradient too when no pad exceeds 2). */
export function winogradApplies(s: Omit<ConvShape, 'cIn' | 'cOut' | 'pads'> & { pads?: readonly number[] }, direction: Direction): boolean {
  const base = s.kh === 3 && s.kw === 3 && s.strideH === 1 && s.strideW === 1 && s.dilations[0] === 1 && s.dilations[1] === 1 && s.group === 1;
  return base && (direction === 'forward' || gradientPads(s.pads ?? [0, 0, 0, 0]).every((p) => p >= 0));
}

/** Every variant, by name. The data gradient runs the same machinery on dy with the weights transposed. */
export const CONV_VARIANTS = {
  'gemm-blocked': {
    name: 'gemm-blocked',
    summary: 'implicit GEMM, shaders/conv.wgsl: each invocation a 16-channel × 8-position register block, no workgroup memory; one GEMM per group',
    cost: 'the CPU default (SwiftShader): no barriers, every weight read reused 8×, every input read 16×; pads each group to 16 channels',
    applies: () => true,
  },
  'gemm-tiled': {
    name: 'gemm-tiled',
    summary: 'implicit GEMM, shaders/conv_tiled.wgsl: 64 × 64 output tiles staged through workgroup memory, 16 × 16 threads × 4 × 4 outputs, split-K when the layer has too few tiles',
    cost: 'the GPU default: shared-memory reuse across 256 threads; split-K adds a partial-sum buffer and a summing pass for small 7×7 / 14×14 layers',
    applies: () => true,
  },
  winograd: {
    name: 'winograd',
    summary: 'Winograd F(2×2, 3×3): input transform (shaders/winograd.wgsl), 16 GEMMs over the channels (conv.wgsl), output transform with bias and ReLU',
    cost: '2.25× fewer multiplications than the direct sum; V and M scratch of 16 × channels × tiles floats, three dispatches',
    applies: winogradApplies,
  },
  im2col: {
    name: 'im2col',
    summary: 'forward only: the windows laid out as columns (shaders/im2col.wgsl), then a pointwise conv.wgsl GEMM',
    cost: 'pays where few input channels make window arithmetic the cost (conv1: C_in 3); a column buffer of C_in·KH·KW × positions (the GEMM runs directly when that exceeds the binding limit)',
    applies: (s, direction) => direction === 'forward' && s.group === 1 && !pointwise(s),
  },
  direct: {
    name: 'direct',
    summary: 'the direct grouped convolution, shaders/depthwise.wgsl: one invocation per 4 outputs of one channel, the sum over its group only',
    cost: 'no padded channel block: wins for depthwise and groups narrower than 8 channels; grouped layers only',
    applies: (s) => s.group > 1,
  },
  gather: {
    name: 'gather',
    summary: 'data gradient only, shaders/conv_gather.wgsl: a direct gather from dy, one invocation per 8 input positions of one row and stride phase × 4 channels, only the taps on the stride grid',
    cost: 'pads the data gradient\'s channels (C_in) to 4, not 16, and skips the taps a stride misses (3 of 4 at stride 2); 8 dy reads per 32 multiply-adds, so it loses to the GEMM where C_in is wide; ungrouped layers only',
    applies: (s, direction) => direction === 'backward' && s.group === 1,
  },
} as const satisfies Record<string, ConvVariant>;

export type ConvVariantName = keyof typeof CONV_VARIANTS;
export const CONV_VARIANT_NAMES = Object.keys(CONV_VARIANTS) as ConvVariantName[];

export function isConvVariant(name: string): name is ConvVariantName {
  return Object.hasOwn(CONV_VARIANTS, name);
}

/** The variants that apply to a layer in one direction, in table order. */
export function applicableVariants(shape: ConvShape, direction: Direction): ConvVariantName[] {
  return CONV_VARIANT_NAMES.filter((n) => CONV_VARIANTS[n].applies(shape, direction));
}

/**
 * A group's output channels below which the direct kernel runs instead of the GEMM: the GEMM pads
 * each group's channels to its 16-channel block, so a narrower group wastes that share of its FMAs.
 * Measured on SwiftShader (bench/grouped-conv.ts, ResNeXt-50 32×4d's layers): the direct kernel
 * 1.21× faster at 4 channels per group, the per-group GEMM 1.3× faster at 8 and 2.9× at 16.
 */
export const DIRECT_BELOW = 8;

/**
 * Data-gradient channels (C_in of an ungrouped layer) below which the CPU family's data gradient runs
 * as the gather (shaders/conv_gather.wgsl) instead of the GEMM or Winograd, both of which pad the
 * channels to the 16-channel block. Measured on SwiftShader (scratch timing of each model's layer
 * shapes, load ~30 on 2 cores, ratios within one run): GoogLeNet's conv1 7×7/2 3 → 64 at 3 items
 * 9.3× faster than gemm-blocked; the first layers of the CI models (C_in 3: 7×7/2, 3×3/2, 4×4/4,
 * 3×3/1) 3–24×, C_in 4–6 layers 2.6–17× (over Winograd too); from 8 channels on either may win.
 */
export const GATHER_BELOW = 8;

/**
 * The fixed rules: the variant a layer runs in one direction when no plan or `variant` says otherwise.
 *   gather        CPU family, data gradient: ungrouped with fewer than GATHER_BELOW input channels
 *   winograd      CPU family: 3×3 stride 1 ungrouped (the data gradient when its pads 2 − pad ≥ 0)
 *   direct        groups narrower than DIRECT_BELOW output channels in that direction (depthwise:
 *                 C_out/group forward, C_in/group backward)
 *   im2col        CPU family, forward: ungrouped with few input channels (< 8) and a window larger than 1×1
 *   gemm-blocked  the rest, CPU family
 *   gemm-tiled    the rest, GPU family (Winograd, im2col and gather are unmeasured on a GPU, so not switched on)
 */
export function convLowering(op: ConvShape, family: KernelVariant, direction: Direction): ConvVariantName {
  if (family === 'cpu' && direction === 'backward' && op.group === 1 && op.cIn < GATHER_BELOW) return 'gather';
  if (family === 'cpu' && winogradApplies(op, direction)) return 'winograd';
  if (op.group > 1 && (direction === 'forward' ? op.cOut : op.cIn) / op.group < DIRECT_BELOW) return 'direct';
  if (family === 'cpu' && direction === 'forward' && usesIm2col(op, family)) return 'im2col';
  return family === 'gpu' ? 'gemm-tiled' : 'gemm-blocked';
}

/**
 * Whether the CPU family's forward pass lays the windows out first (im2col): with few input
 * channels the direct kernel spends its time on window arithmetic (one tap's offsets serve only
 * C_in multiply-adds); GoogLeNet's conv1 (C_in 3, 7×7) ran at half the GEMM rate.
 */
export function usesIm2col(op: Pick<ConvOp, 'kh' | 'kw' | 'cIn' | 'group'>, family: KernelVariant): boolean {
  return family === 'cpu' && op.kh * op.kw > 1 && op.cIn < 8 && op.group === 1;
}

/** One layer's variants by direction; a direction left out is chosen by `variant` or the fixed rules. */
export interface LayerPlan {
  forward?: ConvVariantName;
  backward?: ConvVariantName;
}

/**
 * Variants by conv layer name: the graph op's name (the ONNX Conv node's, with the names of the ops
 * fused into it joined by '+': 'conv1/7x7_s2+conv1/relu_7x7'), or the Conv node's name alone.
 */
export type Plan = Record<string, LayerPlan>;

/** Each conv layer's variant in both directions, as resolved for one engine (KernelEnv.choices). */
export type ResolvedPlan = Map<string, { forward: ConvVariantName; backward: ConvVariantName }>;

/** A named conv layer: what resolvePlan reads of a graph's conv ops. */
export type NamedConv = ConvShape & { name: string };

/**
 * Each layer's variant per direction: the plan's where it names one, else `variant` where it
 * applies, else the fixed rules of `family`. A plan naming an unknown layer, an unknown variant, or a
 * variant that does not apply to its layer is refused (GradcamError naming `source`, the layer and
 * the variants that do apply).
 */
export function resolvePlan(convs: readonly NamedConv[], family: KernelVariant, o: { variant?: ConvVariantName; plan?: Plan; source?: string } = {}): ResolvedPlan {
  const source = o.source ?? 'the plan';
  // A layer by its op name, or by its first node's name (the Conv's, before fused ops' '+…').
  const byName = new Map<string, NamedConv>();
  for (const c of convs) byName.set(firstNode(c.name), c);
  for (const c of convs) byName.set(c.name, c);
  for (const [layer, lp] of Object.entries(o.plan ?? {})) {
    const conv = byName.get(layer);
    if (!conv) {
      const names = convs.map((c) => c.name);
      throw new GradcamError(`${source}: layer '${layer}' is not a convolution of this model`,
        `Its convolutions: ${names.slice(0, 12).map((n) => `'${n}'`).join(', ')}${names.length > 12 ? `, … (${names.length})` : ''}. Tune again (--tune) or fix the plan.`);
    }
    for (const direction of ['forward', 'backward'] as const) {
      const v = lp[direction];
      if (v === undefined) continue;
      if (!isConvVariant(v)) throw new GradcamError(`${source}: layer '${layer}' ${direction}: unknown variant '${v}'`, `Known variants: ${CONV_VARIANT_NAMES.join(', ')}.`);
      if (!CONV_VARIANTS[v].applies(conv, direction)) {
        throw new GradcamError(`${source}: layer '${layer}' ${direction}: variant '${v}' does not apply to ${describeConv(conv)}`,
          `Variants that apply there: ${applicableVariants(conv, direction).join(', ')}.`);
      }
    }
  }
  const out: ResolvedPlan = new Map();
  for (const c of convs) {
    const entry = (name: string) => (o.plan && Object.hasOwn(o.plan, name) ? o.plan[name] : undefined);
    const lp = entry(c.name) ?? entry(firstNode(c.name));
    const pick = (d: Direction): ConvVariantName => {
      const planned = lp?.[d];
      if (planned) return planned;
      if (o.variant && CONV_VARIANTS[o.variant].applies(c, d)) return o.variant;
      return convLowering(c, family, d);
    };
    out.set(c.name, { forward: pick('forward'), backward: pick('backward') });
  }
  return out;
}

const firstNode = (name: string) => name.split('+')[0];

/** "3×3/1 conv 64 → 192, pads [1,1,1,1]" for messages. */
export function describeConv(c: ConvShape): string {
  const dil = c.dilations[0] > 1 || c.dilations[1] > 1 ? ` dilated [${c.dilations}]` : '';
  return `a ${c.kh}×${c.kw}/${c.strideH === c.strideW ? c.strideH : `${c.strideH}×${c.strideW}`} convolution ${c.cIn} → ${c.cOut}${c.group > 1 ? ` in ${c.group} groups` : ''}${dil}, pads [${c.pads}]`;
}

/**
 * Reads a plan from JSON text (a bare plan, or a tuned-plan cache file, whose `plan` it takes);
 * anything else is a GradcamError naming `source` and what was expected.
 */
export function parsePlan(text: string, source: string): Plan {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GradcamError(`${source}: not JSON (${(e as Error).message})`, 'A plan is { "layer": { "forward": "variant", "backward": "variant" }, … }.');
  }
  if (isObject(json) && typeof json.format === 'string' && isObject(json.plan)) json = json.plan;
  if (!isObject(json)) throw new GradcamError(`${source}: expected a JSON object of layers, got ${Array.isArray(json) ? 'an array' : typeof json}`, 'A plan is { "layer": { "forward": "variant", "backward": "variant" }, … }.');
  const plan: Plan = {};
  for (const [layer, lp] of Object.entries(json)) {
    if (!isObject(lp)) throw new GradcamError(`${source}: layer '${layer}': expected { "forward": …, "backward": … }, got ${JSON.stringify(lp)}`);
    const entry: LayerPlan = {};
    for (const [k, v] of Object.entries(lp)) {
      if (k !== 'forward' && k !== 'backward') throw new GradcamError(`${source}: layer '${layer}': unknown key '${k}'`, 'A layer names a variant for "forward" and/or "backward".');
      if (typeof v !== 'string' || !isConvVariant(v)) throw new GradcamError(`${source}: layer '${layer}' ${k}: unknown variant ${JSON.stringify(v)}`, `Known variants: ${CONV_VARIANT_NAMES.join(', ')}.`);
      entry[k] = v;
    }
    plan[layer] = entry;
  }
  return plan;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
