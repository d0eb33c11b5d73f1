/**
 * The CLI's text helpers (src/node/text.ts), which every printed line goes through: control
 * characters escaped, long message lines cut in the middle, credentials in URLs hidden, JSON with
 * the C1 controls escaped; and the byte-size option parser (src/cli/command.ts).
 */
import { describe, expect, test } from 'vitest';
import { parseByteSize } from '../src/cli/command.ts';
import { jsonText, messageLine, printable, redactUrls, shorten } from '../src/node/text.ts';
import { redactUrl } from '../weights/fetch.ts';

describe('text helpers', () => {
  test('printable: C0 (newline and tab included), DEL and C1 become escapes; the rest is untouched', () => {
    expect(printable('a\x1b[31mb\x07\n\t\x7f\u009b\u0085é→')).toBe('a\\x1b[31mb\\x07\\x0a\\x09\\x7f\\u009b\\u0085é→');
    expect(printable('plain text, 224×224 – ok')).toBe('plain text, 224×224 – ok');
  });

  test('shorten: at most the limit, the start and the end kept, never half a surrogate pair', () => {
    const s = `start ${'x'.repeat(1000)} end`;
    const cut = shorten(s, 100);
    expect(cut).toHaveLength(100);
    expect(cut.startsWith('start xx')).toBe(true);
    expect(cut.endsWith('xx end')).toBe(true);
    expect(cut).toContain('…');
    expect(shorten('short', 100)).toBe('short');
    const emoji = '😀'.repeat(300);
    expect(shorten(emoji, 101)).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });

  test('redactUrl / redactUrls: user and password hidden, anywhere in a message; other URLs untouched', () => {
    expect(redactUrl('http://user:secret@host:8080/a/b.onnx?x=1')).toBe('http://***@host:8080/a/b.onnx?x=1');
    expect(redactUrl('https://token@host/m.onnx')).toBe('https://***@host/m.onnx');
    expect(redactUrl('http://host/path@not-userinfo')).toBe('http://host/path@not-userinfo');
    expect(redactUrl('http://a@b:c@host/x')).toBe('http://***@host/x');
    expect(redactUrls("x.onnx: HTTP 404 from http://u:p@h/x and 'https://k@g/y'")).toBe("x.onnx: HTTP 404 from http://***@h/x and 'https://***@g/y'");
    expect(messageLine(`gradcam: http://u:p@h/${'a'.repeat(1000)}\x1b`)).toMatch(/^gradcam: http:\/\/\*\*\*@h\/a+…a+\\x1b$/);
    expect(messageLine('x'.repeat(5000))).toHaveLength(400);
  });

  test('jsonText: the same JSON value, with DEL and C1 escaped (JSON.stringify leaves them raw)', () => {
    const value = { s: 'a\x1b\u009b\x7fz', n: [1, 2] };
    const text = jsonText(value);
    expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(JSON.parse(text)).toEqual(value);
    expect(JSON.parse(jsonText(value, 2))).toEqual(value);
  });

  test('parseByteSize: bytes, kB/MB/GB (powers of 1000), KiB/MiB/GiB (of 1024); nothing else', () => {
    expect(parseByteSize('5000')).toBe(5000);
    expect(parseByteSize('100KB')).toBe(100_000);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('2gib')).toBe(2 ** 31);
    expect(parseByteSize('500mb')).toBe(500_000_000);
    for (const bad of ['', '0', '-5', 'lots', '5 apples', '1e9', '0.1B']) expect(parseByteSize(bad), bad).toBeUndefined();
  });
});
