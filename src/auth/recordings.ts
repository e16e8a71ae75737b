/**
 * Session recordings, kept by auth in its backend as asciicast v2 events (src/api/asciicast.ts)
 * that the proxy streams in numbered chunks while the session runs, so a proxy that dies
 * loses at most the chunk it had not sent yet. Stored as:
 *
 *   recordings/meta/<id>                   the record: meta, writer, next seq (JSON)
 *   recordings/chunks/<id>/<seq, 10 digits> one chunk's events, NDJSON, one event a line
 *
 * A chunk and the record's new counters are written in one atomic batch, so the record
 * never counts a chunk that is not there. Chunk numbers start at 0 and have no gaps; a
 * re-sent chunk with the same number and the same events is accepted again (the answer to
 * the first send may have been lost), different events under a stored number are refused.
 * Access decisions (who may read what) are auth-server.ts's; this module only stores.
 */
import { randomUUID } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { AccessDeniedError, AlreadyExistsError, ConflictError, NotFoundError, PosternError, ValidationError } from '../core/errors.ts';
import type { RecordingMeta } from '../api/types.ts';
import { castTime, parseCastEvent } from '../api/asciicast.ts';
import type {
  StartRecordingRequest, AppendRecordingRequest, AppendRecordingResult, FinishRecordingRequest, RecordingChunk,
} from '../api/auth-types.ts';

/** The most UTF-8 bytes of events one chunk may hold. */
export const MAX_CHUNK_BYTES = 1 << 20;
/** How many bytes of events one read returns by default (at least one chunk, whatever its size). */
export const READ_PAGE_BYTES = 4 << 20;

/** A recording as stored: its meta and what only auth needs. */
export interface RecordingRecord extends RecordingMeta {
  /** The proxy identity that started it; only it may append or finish. */
  writer: string;
  /** The number the next chunk must have; also the count of chunks. */
  nextSeq: number;
  /** The time of the last stored event, in seconds since the start. */
  lastEventSec: number;
}

/** A chunk number out of order: a gap, which would lose what the missing chunk held. */
export class RecordingSeqError extends PosternError {
  readonly expectedSeq: number;
  constructor(id: string, seq: number, expectedSeq: number) {
    super('ERR_POSTERN_RECORDING_SEQ', `chunk ${seq} of recording ${id} is out of order: the next chunk is ${expectedSeq}`, {
      status: 409, hint: 'Send the chunks in order, each once; re-sending the last one stored is allowed',
    });
    this.expectedSeq = expectedSeq;
  }
}

const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const USER_RE = /^[a-z_][a-z0-9_.-]{0,63}$/i;
const TERM_RE = /^[A-Za-z0-9._+-]{1,64}$/;
const SESSION_RE = /^[A-Za-z0-9_-]{1,128}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const metaKey = (id: string): string => `recordings/meta/${id}`;
const chunkPrefix = (id: string): string => `recordings/chunks/${id}/`;
const chunkKey = (id: string, seq: number): string => `${chunkPrefix(id)}${String(seq).padStart(10, '0')}`;

/** Checks a recording id; a ValidationError (400) for anything that is not one. */
export function checkRecordingId(id: unknown): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) throw new ValidationError('invalid recording id', { hint: 'List recordings and their ids with:  postern recordings ls' });
  return id;
}

function text(v: unknown, field: string, max: number): string {
  if (typeof v !== 'string' || v === '') throw new ValidationError(`${field} is required`);
  if (v.length > max) throw new ValidationError(`${field} is too long (at most ${max} characters)`);
  if (CONTROL.test(v)) throw new ValidationError(`${field} must not contain control characters`);
  return v;
}

function size(v: unknown, field: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 10_000) throw new ValidationError(`${field} must be a whole number from 1 to 10000`);
  return v;
}

function time(v: unknown, field: string, dflt: Date): Date {
  if (v === undefined || v === null) return dflt;
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new ValidationError(`${field} must be an ISO 8601 time`);
  return new Date(t);
}

/** The meta of a record, without what only auth needs. */
export function recordingMeta(rec: RecordingRecord): RecordingMeta {
  const { writer: _w, nextSeq: _n, lastEventSec: _l, ...meta } = rec;
  return meta;
}

/** Reads a record, or undefined. */
export async function getRecording(backend: Backend, id: string): Promise<RecordingRecord | undefined> {
  return getJson<RecordingRecord>(backend, metaKey(checkRecordingId(id)));
}

/** Reads a record; NotFoundError (404) when there is none. */
export async function requireRecording(backend: Backend, id: string): Promise<RecordingRecord> {
  const rec = await getRecording(backend, id);
  if (!rec) throw new NotFoundError(`recording ${id} does not exist`, { hint: 'List the recordings you may see with:  postern recordings ls' });
  return rec;
}

/** Starts a recording for the proxy `writer`; checks the request on entry. */
export async function startRecording(backend: Backend, writer: string, req: StartRecordingRequest, now: Date, recordInput: boolean): Promise<RecordingRecord> {
  if (typeof req !== 'object' || req === null) throw new ValidationError('a recording needs user, node, login and kind');
  const user = text(req.user, 'user', 64);
  if (!USER_RE.test(user)) throw new ValidationError(`invalid user name "${user}"`);
  if (req.kind !== 'shell' && req.kind !== 'exec') throw new ValidationError('kind must be "shell" or "exec"');
  if (req.command !== undefined && (typeof req.command !== 'string' || req.command.length > 65_536)) throw new ValidationError('command must be a string of at most 65536 characters');
  if (req.kind === 'exec' && !req.command) throw new ValidationError('an exec recording needs its command');
  if (req.term !== undefined && (typeof req.term !== 'string' || !TERM_RE.test(req.term))) throw new ValidationError('invalid term');
  if (req.sessionId !== undefined && (typeof req.sessionId !== 'string' || !SESSION_RE.test(req.sessionId))) throw new ValidationError('invalid sessionId');
  const startedAt = time(req.startedAt, 'startedAt', now).toISOString();
  const rec: RecordingRecord = {
    id: randomUUID(),
    user,
    node: text(req.node, 'node', 255),
    login: text(req.login, 'login', 64),
    kind: req.kind,
    ...(req.command !== undefined ? { command: req.command } : {}),
    startedAt,
    durationSec: 0,
    width: size(req.width, 'width', 80),
    height: size(req.height, 'height', 24),
    term: req.term ?? 'xterm',
    bytes: 0,
    chunks: 0,
    status: 'incomplete',
    recordInput,
    ...(req.clientAddr !== undefined ? { clientAddr: text(req.clientAddr, 'clientAddr', 256) } : {}),
    ...(req.sessionId !== undefined ? { sessionId: req.sessionId } : {}),
    updatedAt: now.toISOString(),
    writer,
    nextSeq: 0,
    lastEventSec: 0,
  };
  await backend.create(metaKey(rec.id), JSON.stringify(rec));
  return rec;
}

/** Checks a chunk's events against the record: well-formed lines, times that never go back, input only when recorded. */
function checkEvents(events: unknown, rec: RecordingRecord): { text: string; bytes: number; lastT: number } {
  if (typeof events !== 'string' || events.trim() === '') throw new ValidationError('a chunk needs events: asciicast v2 event lines');
  const bytes = Buffer.byteLength(events, 'utf8');
  if (bytes > MAX_CHUNK_BYTES) throw new ValidationError(`a chunk may hold at most ${MAX_CHUNK_BYTES} bytes of events, not ${bytes}`, { hint: 'Send more, smaller chunks' });
  const lines = events.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let lastT = rec.lastEventSec;
  lines.forEach((line, i) => {
    const [t, code] = parseCastEvent(line, `event ${i + 1} of the chunk`);
    if (t + 1e-6 < lastT) throw new ValidationError(`event ${i + 1} of the chunk goes back in time (${t}s after ${lastT}s)`);
    if (code === 'i' && !rec.recordInput) throw new ValidationError('this recording does not keep input: the cluster\'s record_input was off when it started');
    lastT = Math.max(lastT, t);
  });
  const normal = lines.join('\n') + '\n';
  return { text: normal, bytes: Buffer.byteLength(normal, 'utf8'), lastT };
}

/** Stores the next chunk of a recording; a re-send of the last stored one is answered again. */
export async function appendRecording(backend: Backend, writer: string, req: AppendRecordingRequest, now: Date): Promise<{ result: AppendRecordingResult; record: RecordingRecord }> {
  const id = checkRecordingId(req?.id);
  const seq = req.seq;
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq > 9_999_999_999) throw new ValidationError('seq must be a whole number, 0 or more');
  for (let attempt = 0; ; attempt++) {
    const item = await backend.get(metaKey(id));
    if (!item) throw new NotFoundError(`recording ${id} does not exist`);
    const rec = JSON.parse(item.value) as RecordingRecord;
    if (rec.writer !== writer) throw new AccessDeniedError(`recording ${id} was started by another proxy`);
    if (seq < rec.nextSeq) {
      const stored = await backend.get(chunkKey(id, seq));
      const again = stored && typeof req.events === 'string' && stored.value === checkEvents(req.events, { ...rec, lastEventSec: 0 }).text;
      if (again) return { result: { seq, nextSeq: rec.nextSeq, duplicate: true }, record: rec };
      throw new ConflictError(`chunk ${seq} of recording ${id} is already stored with other events`);
    }
    if (rec.status === 'complete') throw new ConflictError(`recording ${id} is finished: it takes no more chunks`);
    if (seq > rec.nextSeq) throw new RecordingSeqError(id, seq, rec.nextSeq);
    const ev = checkEvents(req.events, rec);
    const next: RecordingRecord = {
      ...rec,
      nextSeq: seq + 1,
      chunks: seq + 1,
      bytes: rec.bytes + ev.bytes,
      lastEventSec: ev.lastT,
      durationSec: castTime(ev.lastT),
      updatedAt: now.toISOString(),
    };
    try {
      await backend.atomic([
        { kind: 'create', key: chunkKey(id, seq), value: ev.text },
        { kind: 'cas', key: metaKey(id), expectedRevision: item.revision, value: JSON.stringify(next) },
      ]);
      return { result: { seq, nextSeq: next.nextSeq, duplicate: false }, record: next };
    } catch (err) {
      // Another send of this chunk won the race: look again (it is then a duplicate).
      if ((err instanceof ConflictError || err instanceof AlreadyExistsError) && attempt < 3) continue;
      throw err;
    }
  }
}

/** Marks a recording complete; `changed` is false when it already was (a finish sent twice). */
export async function finishRecording(backend: Backend, writer: string, req: FinishRecordingRequest, now: Date): Promise<{ record: RecordingRecord; changed: boolean }> {
  const id = checkRecordingId(req?.id);
  if (req.exitCode !== undefined && req.exitCode !== null && (typeof req.exitCode !== 'number' || !Number.isInteger(req.exitCode) || req.exitCode < 0 || req.exitCode > 255)) {
    throw new ValidationError('exitCode must be a whole number from 0 to 255');
  }
  if (req.lostBytes !== undefined && (typeof req.lostBytes !== 'number' || !Number.isInteger(req.lostBytes) || req.lostBytes < 0)) {
    throw new ValidationError('lostBytes must be a whole number, 0 or more');
  }
  const endedAt = time(req.endedAt, 'endedAt', now);
  for (let attempt = 0; ; attempt++) {
    const item = await backend.get(metaKey(id));
    if (!item) throw new NotFoundError(`recording ${id} does not exist`);
    const rec = JSON.parse(item.value) as RecordingRecord;
    if (rec.writer !== writer) throw new AccessDeniedError(`recording ${id} was started by another proxy`);
    if (rec.status === 'complete') return { record: rec, changed: false };
    const span = Math.max(0, (endedAt.getTime() - Date.parse(rec.startedAt)) / 1000);
    const next: RecordingRecord = {
      ...rec,
      status: 'complete',
      endedAt: endedAt.toISOString(),
      durationSec: castTime(Math.max(rec.lastEventSec, span)),
      ...(typeof req.exitCode === 'number' ? { exitCode: req.exitCode } : {}),
      ...(req.lostBytes ? { lostBytes: req.lostBytes } : {}),
      updatedAt: now.toISOString(),
    };
    try {
      await backend.compareAndSwap(metaKey(id), item.revision, JSON.stringify(next));
      return { record: next, changed: true };
    } catch (err) {
      if (err instanceof ConflictError && attempt < 3) continue;
      throw err;
    }
  }
}

/** Every record, newest first. */
export async function listRecordings(backend: Backend): Promise<RecordingRecord[]> {
  const items = await backend.getRange('recordings/meta/');
  return items.map((i) => JSON.parse(i.value) as RecordingRecord)
    .sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1));
}

/**
 * Reads chunks in order after `afterSeq` (from the first without it), up to about
 * `maxBytes` (always at least one chunk); `more` says whether stored chunks remain.
 */
export async function readChunks(backend: Backend, id: string, afterSeq: number | undefined, maxBytes = READ_PAGE_BYTES): Promise<{ chunks: RecordingChunk[]; more: boolean }> {
  const chunks: RecordingChunk[] = [];
  let bytes = 0;
  let after = afterSeq === undefined ? undefined : chunkKey(id, afterSeq);
  for (;;) {
    const batch = await backend.getRange(chunkPrefix(id), { after, limit: 64 });
    for (let i = 0; i < batch.length; i++) {
      if (chunks.length > 0 && bytes + batch[i].value.length > maxBytes) return { chunks, more: true };
      chunks.push({ seq: Number(batch[i].key.slice(chunkPrefix(id).length)), events: batch[i].value });
      bytes += batch[i].value.length;
    }
    if (batch.length < 64) return { chunks, more: false };
    after = batch[batch.length - 1].key;
  }
}
