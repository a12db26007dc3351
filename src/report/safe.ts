/**
 * Strings from a dump image (OSRELEASE, utsname, notes, eraseinfo, header
 * fields) reach a terminal only escaped: an escape sequence in a crafted
 * image must not move the cursor, retitle the window or hide lines.
 */

// C0 controls, DEL and the C1 controls (0x80-0x9f: CSI is 0x9b).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_NEWLINE = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/g;

const escape = (c: string): string => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** One value on one line: every control character, newline included, as \xNN. */
export function field(s: string): string {
  return s.replace(CONTROL, escape);
}

/** A rendered report: control characters other than the newlines that end lines, as \xNN. */
export function terminalText(s: string): string {
  return s.replace(CONTROL_BUT_NEWLINE, escape);
}
