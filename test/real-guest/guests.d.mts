/** Types of guests.mjs (the guest descriptions the harness boots). */
export interface GuestDescription {
  name: string;
  kernel: '5.10' | '6.1' | '6.12';
  cpu: string;
  memoryMiB: number;
  balloonMiB: number;
  vmem?: { sizeMiB: number; plugMiB: number; shrinkToMiB: number; online: string };
  fill: { randomMiB: number; patternMiB: number; zeroMiB: number; anonMiB: number; processes?: number };
  earlyDump?: boolean;
  thp?: string;
  init?: string;
  files?: Record<string, string>;
  append?: string;
  ci: boolean;
}
export declare const GUESTS: GuestDescription[];
export declare function guestByName(name: string): GuestDescription;
