/**
 * Ground-truth boxes from PASCAL VOC / ILSVRC annotation files: an XML document
 *
 *   <annotation><filename>…</filename><size><width>W</width><height>H</height></size>
 *     <object><name>n01751748</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>…
 *   </annotation>
 *
 * Boxes are inclusive pixel ranges (xmin ≤ x ≤ xmax), as both formats and the ILSVRC devkit's
 * overlap count (width = xmax − xmin + 1) treat them.
 *
 * The files come from anywhere (a downloaded data set), so they are read by a real XML parser,
 * saxes: strict (a file that is not well-formed XML is refused, with its line and column), streaming
 * and linear in the file's size, and it never processes a DTD: no external entity is read and no
 * entity is expanded (a reference to a DTD's entity is an error; the five predefined entities and
 * character references are decoded). Regular expressions over the text could not tell a real
 * element from one inside CDATA or a comment, and took quadratic time on unclosed tags. Only the
 * elements the format names count, where it puts them: <object>s that are children of
 * <annotation>, their <name> and <bndbox>. A file is at most MAX_BOX_FILE_BYTES.
 */
import { SaxesParser } from 'saxes';
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

/**
 * The largest box file read: 1 MiB. An ILSVRC or VOC file is about 1 kB (a few hundred bytes per
 * object), so this is thousands of objects; anything bigger is not a box file.
 */
export const MAX_BOX_FILE_BYTES = 2 ** 20;
export const MAX_BOX_FILE_TEXT = '1 MiB';

/** An element of the document: its name, child elements and text (CDATA included). */
interface Element {
  name: string;
  children: Element[];
  text: string;
}

/** Parses `xml` into elements; errors name `source`, the line and the column. */
function parseXml(xml: string, source: string): Element {
  const parser = new SaxesParser({ fileName: source, position: true });
  const document: Element = { name: '', children: [], text: '' };
  const open: Element[] = [document];
  parser.on('opentag', (tag) => {
    const e: Element = { name: tag.name, children: [], text: '' };
    open[open.length - 1].children.push(e);
    open.push(e);
  });
  parser.on('closetag', () => void open.pop());
  parser.on('text', (t) => void (open[open.length - 1].text += t));
  parser.on('cdata', (t) => void (open[open.length - 1].text += t));
  try {
    parser.write(xml).close();
  } catch (err) {
    // saxes: "<source>:<line>:<column>: <what>."
    const m = /^(.*?:\d+:\d+): (.*?)\.?$/s.exec((err as Error).message);
    const what = m ? m[2] : (err as Error).message;
    throw new GradcamError(`${m ? m[1] : source}: not well-formed XML: ${what}`,
      /entity/.test(what) ? 'Box files are read without their DTD: only &amp; &lt; &gt; &quot; &apos; and character references (&#65;) are decoded, and a code point must be a valid XML character.'
        : 'Check the file: is it a complete PASCAL VOC / ILSVRC XML file?');
  }
  return document;
}

const child = (e: Element, name: string) => e.children.find((c) => c.name === name);
const textOf = (e: Element | undefined) => e?.text.trim();

/** A coordinate or size: a decimal number, finite. */
function numberIn(e: Element | undefined): { value?: number; why?: string } {
  const t = textOf(e);
  if (t === undefined) return { why: 'missing' };
  const shown = t.length > 12 ? `'${t.slice(0, 12)}…' (${t.length} characters)` : `'${t}'`;
  if (!/^[+-]?\d+(\.\d+)?$/.test(t)) return { why: `${shown}, not a number` };
  const value = Number(t);
  return Number.isFinite(value) ? { value } : { why: `${shown}, not a finite number` };
}

/**
 * Reads an annotation file's text; `source` names it in messages. A file that is not well-formed
 * XML, larger than MAX_BOX_FILE_BYTES, or with an object without a name or with a box that is not
 * four finite numbers with xmin ≤ xmax, ymin ≤ ymax is an error naming the file (and the object).
 */
export function parseAnnotation(xml: string, source: string): Annotation {
  // Characters ≤ UTF-8 bytes: a string over the cap in characters is over it in bytes.
  if (xml.length > MAX_BOX_FILE_BYTES) {
    throw new GradcamError(`${source}: ${xml.length} characters, more than the ${MAX_BOX_FILE_TEXT} limit of a box file`, 'An ILSVRC or VOC box file is about 1 kB: is this the right file?');
  }
  const root = parseXml(xml, source).children[0];
  if (root?.name !== 'annotation') throw new GradcamError(`${source}: not a PASCAL VOC / ILSVRC annotation (no <annotation> element)`, 'Give the folder of the .xml box files (ILSVRC2012_bbox_val_v3, or VOC Annotations/).');
  const size = child(root, 'size');
  const objects = root.children.filter((c) => c.name === 'object').map((o, i): AnnotatedObject => {
    const name = textOf(child(o, 'name'));
    if (!name) throw new GradcamError(`${source}: object ${i + 1} has no <name>`);
    const b = child(o, 'bndbox');
    const coords = (['xmin', 'ymin', 'xmax', 'ymax'] as const).map((k) => [k, numberIn(b && child(b, k))] as const);
    const bad = coords.find(([, c]) => c.value === undefined);
    const box = Object.fromEntries(coords.map(([k, c]) => [k, c.value])) as unknown as Box;
    if (!b || bad || box.xmin > box.xmax || box.ymin > box.ymax) {
      const why = !b ? ' (no <bndbox>)' : bad ? ` (<${bad[0]}> is ${bad[1].why})` : '';
      throw new GradcamError(`${source}: object ${i + 1} ('${name}') has no box of four numbers <xmin> ≤ <xmax>, <ymin> ≤ <ymax> in <bndbox>${why}`);
    }
    return { name, box };
  });
  return {
    filename: textOf(child(root, 'filename')),
    width: size && numberIn(child(size, 'width')).value,
    height: size && numberIn(child(size, 'height')).value,
    objects,
  };
}

/**
 * A box clipped to a W × H picture (1-based inclusive pixels: 1…W, 1…H); null when no pixel of the
 * picture is in it.
 */
export function clipToPicture(box: Box, width: number, height: number): Box | null {
  const b = { xmin: Math.max(1, box.xmin), ymin: Math.max(1, box.ymin), xmax: Math.min(width, box.xmax), ymax: Math.min(height, box.ymax) };
  return b.xmin <= b.xmax && b.ymin <= b.ymax ? b : null;
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
