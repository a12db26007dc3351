/**
 * dumpsieve's version, for --version: a constant, so that the CLI (and the
 * single-file bundle) never reads package.json at run time. A test holds it
 * equal to package.json's "version".
 */
export const VERSION = '0.1.0';
