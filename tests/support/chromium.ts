// Launches the machine's Debian Chromium through playwright-core for browser tests and the
// benchmark: headless, no GPU, no network chatter, a fresh profile removed on close. Console
// errors of every page and worker are collected so a test can assert there were none.
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface LaunchChromiumOptions {
  /** Profile directory to use (kept on close). Default: a fresh temp dir, removed on close. */
  userDataDir?: string;
  /** Appended to CHROMIUM_ARGS, e.g. '--enable-unsafe-webgpu'. */
  extraArgs?: string[];
  /** Sees every console message of every page and worker (e.g. to echo progress). */
  onConsole?: (type: string, text: string) => void;
}

/** Memory of one Chromium process, from /proc (Linux only). */
export interface ChromiumProcessMemory {
  pid: number;
  /** Chromium's --type (renderer, gpu-process, utility, zygote…) or 'browser'. */
  type: string;
  rssBytes: number;
  /** VmHWM: the highest RSS this process reached. */
  peakRssBytes: number;
  /** CPU time (user + system, all its threads) it has used so far, seconds. */
  cpuSeconds: number;
}

export interface LaunchedChromium {
  /** Playwright's persistent context (the only way to pass our own profile directory). */
  browser: BrowserContext;
  /** A new tab. */
  newPage(): Promise<Page>;
  /** Console errors and uncaught exceptions of every page and worker, in arrival order. */
  consoleErrors: string[];
  /** RSS of the browser process and everything it started (Linux /proc). */
  processMemory(): Promise<ChromiumProcessMemory[]>;
  close(): Promise<void>;
}

// Temp profiles not removed yet: removed at the latest when the process exits (e.g. on a
// signal, after Playwright has killed the browser).
const liveProfiles = new Set<string>();
let exitHookInstalled = false;

function removeProfileAtExit(dir: string): void {
  liveProfiles.add(dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const profile of liveProfiles) rmSync(profile, { recursive: true, force: true });
  });
}

export async function launchChromium(options: LaunchChromiumOptions = {}): Promise<LaunchedChromium> {
  const ownsProfile = options.userDataDir === undefined;
  const userDataDir = options.userDataDir ?? (await mkdtemp(join(tmpdir(), 'qwen-web-chromium-')));
  if (ownsProfile) removeProfileAtExit(userDataDir);
  const consoleErrors: string[] = [];
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
    });
  } catch (error) {
    if (ownsProfile) {
      await rm(userDataDir, { recursive: true, force: true });
      liveProfiles.delete(userDataDir);
    }
    throw error;
  }

  const onMessage = (message: ConsoleMessage): void => {
    options.onConsole?.(message.type(), message.text());
    if (message.type() !== 'error') return;
    const { url, lineNumber } = message.location();
    consoleErrors.push(url ? `${message.text()} (${url}:${lineNumber})` : message.text());
  };
  // The context's events cover every page and its workers.
  context.on('console', onMessage);
  context.on('weberror', (webError) => consoleErrors.push(`uncaught: ${String(webError.error())}`));

  let closed = false;
  return {
    browser: context,
    consoleErrors,
    newPage: () => context.newPage(),
    processMemory: () => chromiumProcessMemory(userDataDir),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await context.close();
      } finally {
        if (ownsProfile) {
          await rm(userDataDir, { recursive: true, force: true });
          liveProfiles.delete(userDataDir);
        }
      }
    },
  };
}

/**
 * Whether a page loaded from `url` is `crossOriginIsolated` (COOP + COEP took effect), i.e.
 * whether SharedArrayBuffer and wasm threads are available to it.
 */
export async function isCrossOriginIsolated(launched: LaunchedChromium, url: string): Promise<boolean> {
  const page = await launched.newPage();
  try {
    await page.goto(url);
    return await page.evaluate(() => globalThis.crossOriginIsolated === true);
  } finally {
    await page.close();
  }
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

interface ProcInfo {
  pid: number;
  ppid: number;
  /** Arguments joined by spaces: Chromium rewrites its children's cmdline into one string. */
  commandLine: string;
  cpuSeconds: number;
}

async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const [cmdline, stat] = await Promise.all([
      readFile(`/proc/${pid}/cmdline`, 'utf8'),
      readFile(`/proc/${pid}/stat`, 'utf8'),
    ]);
    // stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
    const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after comm: state ppid … utime (field 14) stime (field 15), counted from state as field 3
    const cpuSeconds = (Number(afterComm[11]) + Number(afterComm[12])) / CLOCK_TICKS;
    return { pid, ppid: Number(afterComm[1]), commandLine: cmdline.replaceAll('\0', ' ').trim(), cpuSeconds };
  } catch {
    return undefined; // the process ended while we looked
  }
}

/** CPU time (user + system, all threads) process `pid` has used so far, seconds; 0 once it is gone. */
export async function processCpuSeconds(pid: number): Promise<number> {
  return (await readProc(pid))?.cpuSeconds ?? 0;
}

function hasArgument(commandLine: string, argument: string): boolean {
  return ` ${commandLine} `.includes(` ${argument} `);
}

function statusBytes(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** The highest VmHWM among the renderer processes (a page's workers are threads of its renderer), bytes. */
export function rendererPeakBytes(memory: readonly ChromiumProcessMemory[]): number {
  return Math.max(0, ...memory.filter((p) => p.type === 'renderer').map((p) => p.peakRssBytes));
}

/** The Chromium processes of the profile `userDataDir`: its browser process and descendants. */
export async function chromiumProcessMemory(userDataDir: string): Promise<ChromiumProcessMemory[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const infos = (await Promise.all(pids.map(readProc))).filter((info): info is ProcInfo => info !== undefined);
  const profileArg = `--user-data-dir=${userDataDir}`;
  const roots = infos.filter(
    (info) => hasArgument(info.commandLine, profileArg) && !/(^| )--type=/.test(info.commandLine),
  );
  const members = new Set(roots.map((info) => info.pid));
  // Parents list before children only by chance: repeat until nothing new joins.
  for (let grew = true; grew; ) {
    grew = false;
    for (const info of infos) {
      if (!members.has(info.pid) && members.has(info.ppid)) {
        members.add(info.pid);
        grew = true;
      }
    }
  }
  const result: ChromiumProcessMemory[] = [];
  for (const info of infos) {
    if (!members.has(info.pid)) continue;
    let status: string;
    try {
      status = await readFile(`/proc/${info.pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const type = /(?:^| )--type=(\S+)/.exec(info.commandLine)?.[1] ?? 'browser';
    result.push({
      pid: info.pid,
      type,
      rssBytes: statusBytes(status, 'VmRSS'),
      peakRssBytes: statusBytes(status, 'VmHWM'),
      cpuSeconds: info.cpuSeconds,
    });
  }
  return result;
}
