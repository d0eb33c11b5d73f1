/**
 * Ground-truth boxes from PASCAL VOC / ILSVRC annotation files: an XML document
 *
 *   <annotation><filename>…</filename><size><width>W</width><height>H</height></size>
 *     <object><name>n01751748</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>…
 *   </annotation>
 *
 * Boxes are inclusive pixel ranges (xmin ≤ x ≤ xmax), as both formats and the ILSVRC devkit's
 * overlap count (width = xmax − xmin + 1) treat them. The format is this small and fixed, so it is
 * read with a few regular expressions, not an XML library: elements are found by name, the five
 * predefined entities and CDATA are decoded, comments are skipped; anything else a full XML parser
 * would accept and these files never hold (DTDs, namespaces) is not supported.
 */
import { GradcamError } from '../errors.ts';

/** An axis-aligned box, inclusive pixel ranges. */
export interface Box {
  xmin: number;
  ymin: number;
  xmax: number;
  ymax: number;
}

export interface AnnotatedObject {
  /** The class as the file names it: a WordNet id (ILSVRC, 'n01751748') or a class name (VOC, 'dog'). */
  name: string;
  box: Box;
}

export interface Annotation {
  filename?: string;
  /** The picture's size as the file states it (<size>), when it does. */
  width?: number;
  height?: number;
  objects: AnnotatedObject[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function text(raw: string): string {
  const cdata = /^\s*<!\[CDATA\[([\s\S]*?)\]\]>\s*$/.exec(raw);
  if (cdata) return cdata[1];
  return raw.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return Object.hasOwn(ENTITIES, e) ? ENTITIES[e] : m;
  }).trim();
}

/** The contents of each <tag>…</tag> in `xml` (not nested in another of the same tag). */
function elements(xml: string, tag: string): string[] {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}\\s*>`, 'g');
  return [...xml.matchAll(re)].map((m) => m[1]);
}

function first(xml: string, tag: string): string | undefined {
  const e = elements(xml, tag);
  return e.length ? text(e[0]) : undefined;
}

/**
 * Reads an annotation file's text; `source` names it in messages. An object without a name or with
 * a box that is not four numbers with xmin ≤ xmax, ymin ≤ ymax is an error naming the object.
 */
export function parseAnnotation(xml: string, source: string): Annotation {
  const doc = xml.replace(/<!--[\s\S]*?-->/g, '');
  if (!/<annotation[\s>]/.test(doc)) throw new GradcamError(`${source}: not a PASCAL VOC / ILSVRC annotation (no <annotation> element)`, 'Give the folder of the .xml box files (ILSVRC2012_bbox_val_v3, or VOC Annotations/).');
  const num = (v: string | undefined) => (v !== undefined && /^[+-]?\d+(\.\d+)?$/.test(v) ? Number(v) : undefined);
  const sizeXml = elements(doc, 'size')[0];
  const objects = elements(doc, 'object').map((o, i): AnnotatedObject => {
    const name = first(o, 'name');
    if (!name) throw new GradcamError(`${source}: object ${i + 1} has no <name>`);
    const b = elements(o, 'bndbox')[0];
    const box = b === undefined ? undefined : { xmin: num(first(b, 'xmin')), ymin: num(first(b, 'ymin')), xmax: num(first(b, 'xmax')), ymax: num(first(b, 'ymax')) };
    if (!box || Object.values(box).some((v) => v === undefined) || box.xmin! > box.xmax! || box.ymin! > box.ymax!) {
      throw new GradcamError(`${source}: object ${i + 1} ('${name}') has no box of four numbers <xmin> ≤ <xmax>, <ymin> ≤ <ymax> in <bndbox>`);
    }
    return { name, box: box as Box };
  });
  return {
    filename: first(doc, 'filename'),
    width: sizeXml ? num(first(sizeXml, 'width')) : undefined,
    height: sizeXml ? num(first(sizeXml, 'height')) : undefined,
    objects,
  };
}

/** Writes an annotation as VOC XML (for tests and for converting other box formats). */
export function annotationXml(a: Annotation): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const size = a.width !== undefined && a.height !== undefined ? `<size><width>${a.width}</width><height>${a.height}</height><depth>3</depth></size>` : '';
  const objects = a.objects.map((o) => `<object><name>${esc(o.name)}</name><bndbox><xmin>${o.box.xmin}</xmin><ymin>${o.box.ymin}</ymin><xmax>${o.box.xmax}</xmax><ymax>${o.box.ymax}</ymax></bndbox></object>`);
  return `<annotation>${a.filename !== undefined ? `<filename>${esc(a.filename)}</filename>` : ''}${size}${objects.join('')}</annotation>\n`;
}

/**
 * Class names of annotations → class indices: a WordNet id by its line in a synset list (ILSVRC's
 * LOC_synset_mapping.txt or Caffe's synsets.txt: one 'n01440764 …' per line, in class order), else
 * a label of the model (case-insensitive), else a decimal index. Unknown: undefined.
 */
export function classResolver(labels: readonly string[], synsets?: string): (name: string) => number | undefined {
  const byWnid = new Map<string, number>();
  if (synsets !== undefined) {
    synsets.split('\n').map((l) => l.trim()).filter(Boolean).forEach((l, i) => byWnid.set(l.split(/\s+/)[0], i));
  }
  const byLabel = new Map<string, number>();
  labels.forEach((l, i) => {
    if (!byLabel.has(l.toLowerCase())) byLabel.set(l.toLowerCase(), i);
  });
  return (name) => {
    const w = byWnid.get(name);
    if (w !== undefined) return w;
    const l = byLabel.get(name.toLowerCase());
    if (l !== undefined) return l;
    return /^\d+$/.test(name) && Number(name) < labels.length ? Number(name) : undefined;
  };
}
