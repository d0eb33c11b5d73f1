/**
 * Text that reaches the terminal. Names, producers and messages can come from a model file or a
 * server, so every line the CLI prints goes through `printable` (control characters made visible:
 * an ANSI escape in a node name cannot recolour the terminal or forge a line), message lines are
 * kept short (`shorten`), and credentials in URLs are never shown (`redactUrls`).
 */

/** C0 controls (newline and tab included), DEL and the C1 controls (U+0080–U+009F, CSI among them). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Control characters as visible escapes: ESC → \x1b, DEL → \x7f, CSI (U+009B) → \u009b. */
export function printable(s: string): string {
  return s.replace(CONTROL, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x80 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}

/** The longest message line printed (errors, hints, notices); longer ones lose their middle. */
export const MAX_MESSAGE_LINE = 400;

/** `s` cut to at most `max` characters: its start and its end, joined by '…'. */
export function shorten(s: string, max = MAX_MESSAGE_LINE): string {
  if (s.length <= max) return s;
  let head = Math.ceil(((max - 1) * 2) / 3);
  let tail = s.length - (max - 1 - head);
  // Never split a surrogate pair.
  if (/[\ud800-\udbff]/.test(s[head - 1])) head--;
  if (/[\udc00-\udfff]/.test(s[tail])) tail++;
  return `${s.slice(0, head)}…${s.slice(tail)}`;
}

/**
 * Every URL with credentials in a text, its user name and password as `***` (the text of an error,
 * a notice): http://user:secret@host/x → http://***@host/x. (One URL alone: redactUrl, weights/fetch.ts.)
 */
export function redactUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s'"`]*@/gi, '$1***@');
}

/** One message line for stderr: control characters escaped, credentials hidden, at most MAX_MESSAGE_LINE characters. */
export function messageLine(s: string): string {
  return shorten(printable(redactUrls(s)));
}

/**
 * JSON text with the characters JSON.stringify leaves raw but a terminal acts on (DEL and the C1
 * controls) escaped too; still the same JSON value.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
