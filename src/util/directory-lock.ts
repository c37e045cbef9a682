import { randomUUID } from "node:crypto";
import { link, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeError } from "./atomic-write.js";
import { InputError } from "./errors.js";

/** Name of the lock file inside a locked directory (PGlite itself writes no postmaster.pid). */
export const LOCK_FILE_NAME = "influence.lock";

/** A takeover claim older than this was left by a process that died mid-takeover. */
const ABANDONED_CLAIM_MS = 10_000;
const MAX_ATTEMPTS = 20;

interface Holder {
  pid: number;
  hostname: string;
  acquiredAt: string;
  token: string;
}

/** What a lock guards, for the message a second process gets. */
export interface LockPurpose {
  /** e.g. "database directory". */
  what: string;
  /** Why sharing is refused and what to do instead. */
  advice: string;
}

export const DATABASE_DIRECTORY: LockPurpose = {
  what: "database directory",
  advice: "Two processes opening one PGlite directory lose committed rows: stop the other process, or point it at a PostgreSQL server with --database.",
};

export class DirectoryLockedError extends InputError {
  constructor(
    readonly directory: string,
    readonly holder: Holder,
    purpose: LockPurpose = DATABASE_DIRECTORY,
  ) {
    const where = holder.hostname === os.hostname() ? `process ${holder.pid}` : `process ${holder.pid} on host ${holder.hostname}`;
    super(
      `${purpose.what} ${directory} is in use by ${where} (since ${holder.acquiredAt}). ${purpose.advice} ` +
        `If no such process exists, delete ${path.join(directory, LOCK_FILE_NAME)}.`,
    );
  }
}

export interface DirectoryLock {
  readonly path: string;
  /** Removes the lock file if it is still ours; safe to call more than once. */
  release(): Promise<void>;
}

/**
 * Takes the lock file of `directory` (which must exist) for this process. A lock whose process no
 * longer runs (same host, PID gone) is taken over; a live one raises DirectoryLockedError naming
 * the directory and the PID.
 */
export async function lockDirectory(directory: string, purpose: LockPurpose = DATABASE_DIRECTORY): Promise<DirectoryLock> {
  const lockPath = path.join(directory, LOCK_FILE_NAME);
  const holder: Holder = { pid: process.pid, hostname: os.hostname(), acquiredAt: new Date().toISOString(), token: randomUUID() };
  const content = `${JSON.stringify(holder)}\n`;

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (await createExclusive(lockPath, content)) return ownedLock(lockPath, content);
    const existing = await readLock(lockPath);
    if (existing === undefined) continue; // released between our attempt and the read
    if (existing.holder && isAlive(existing.holder)) throw new DirectoryLockedError(directory, existing.holder, purpose);
    await removeStaleLock(lockPath, existing.raw);
    await new Promise((resolve) => setTimeout(resolve, 5 * attempt));
  }
  throw new Error(`could not take the lock file ${lockPath}: other processes keep taking it over`);
}

function ownedLock(lockPath: string, content: string): DirectoryLock {
  let released = false;
  return {
    path: lockPath,
    async release() {
      if (released) return;
      released = true;
      const current = await readLock(lockPath);
      if (current?.raw === content) await rm(lockPath, { force: true });
    },
  };
}

/** Creates `target` with `content`, atomically and only if absent: readers never see it half written. */
async function createExclusive(target: string, content: string): Promise<boolean> {
  const temp = `${target}.${process.pid}.${randomUUID()}.tmp`;
  // On a full disk writeFile leaves an empty file, and its error names none.
  await writeFile(temp, content).catch(async (err: unknown) => {
    await rm(temp, { force: true });
    throw writeError(target, err);
  });
  try {
    await link(temp, target);
    return true;
  } catch (err) {
    if (errorCode(err) === "EEXIST") return false;
    throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

async function readLock(lockPath: string): Promise<{ raw: string; holder: Holder | null } | undefined> {
  let raw: string;
  try {
    raw = await readFile(lockPath, "utf8");
  } catch (err) {
    if (errorCode(err) === "ENOENT") return undefined;
    throw err;
  }
  return { raw, holder: parseHolder(raw) };
}

/** null for content this code did not write: such a file names no process that could hold it. */
function parseHolder(raw: string): Holder | null {
  try {
    const value = JSON.parse(raw) as Partial<Holder>;
    if (Number.isInteger(value.pid) && typeof value.hostname === "string" && typeof value.token === "string") {
      return { pid: value.pid!, hostname: value.hostname, token: value.token, acquiredAt: String(value.acquiredAt) };
    }
  } catch {
    // fall through
  }
  return null;
}

function isAlive(holder: Holder): boolean {
  if (holder.hostname !== os.hostname()) return true; // cannot check another host's processes
  if (holder.pid === process.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === "EPERM"; // exists, owned by another user
  }
}

/**
 * Deletes the stale lock whose content is `staleRaw`. Two processes may find the same stale lock;
 * an exclusive claim file lets only one delete it, and the content is compared again under the
 * claim so that a fresh lock taken meanwhile by a third process is never deleted.
 */
async function removeStaleLock(lockPath: string, staleRaw: string): Promise<void> {
  const claim = `${lockPath}.takeover`;
  if (!(await createExclusive(claim, `${process.pid}\n`))) {
    const claimStat = await stat(claim).catch(() => undefined);
    if (claimStat && Date.now() - claimStat.mtimeMs > ABANDONED_CLAIM_MS) await rm(claim, { force: true });
    return;
  }
  try {
    const current = await readLock(lockPath);
    if (current?.raw === staleRaw) await rm(lockPath, { force: true });
  } finally {
    await rm(claim, { force: true });
  }
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
