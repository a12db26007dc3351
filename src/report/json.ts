/**
 * JSON for programs: bigints become 0x-hex strings, key order as built.
 * JSON.stringify escapes C0 controls; DEL and C1 controls (strings from a
 * dump image) are escaped too, so the text is safe on a terminal.
 */
export function toJson(value: unknown): string {
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2);
  // eslint-disable-next-line no-control-regex
  return `${text.replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}
