#!/usr/bin/env node
// dumpsieve command-line entry: a thin launcher for the built program (src/cli/bin.ts).
import '../dist/cli/bin.js';
