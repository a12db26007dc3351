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
  crash?: {
    crashkernelMiB: number;
    collectors: Array<'dumpsieve' | 'makedumpfile'>;
    args: string[];
    append: string[];
    reference?: boolean;
    collectorsOnDisk?: boolean;
    diskMiB: number;
    timeoutS: number;
  };
  ci: boolean;
}
export declare const CRASH_ARGS: string[];
export declare const CAPTURE_APPEND: string[];
export declare const GUESTS: GuestDescription[];
export declare function guestByName(name: string): GuestDescription;
export declare const ON_REQUEST: string[];
export declare function suiteGuests(selection?: string): GuestDescription[];
