/** Kexec segment lists for validate (format: docs/formats/kexec-segments.md). */
export { readKexecSegments } from '../formats/kexec-segments.js';
