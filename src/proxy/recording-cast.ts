/**
 * A recording as a .cast file (asciicast v2) for a user, read from auth page by page so the
 * proxy never holds a whole recording: GET /webapi/recordings/:id uses it, and so can the
 * web UI's player and download.
 */
import { Readable } from 'node:stream';
import type { RecordingReadAuth } from '../api/proxy-auth.ts';
import type { RecordingMeta } from '../api/types.ts';

/** The MIME type of asciicast files. */
export const CAST_CONTENT_TYPE = 'application/x-asciicast';

/**
 * Opens a recording for `user` (who must be its owner or hold the admin role; auth
 * decides). The first page is read before this resolves, so a refusal (403) or an unknown
 * id (404) is an error here, before any byte was sent.
 */
export async function openCastStream(auth: RecordingReadAuth, req: { id: string; user: string }): Promise<{ meta: RecordingMeta; stream: Readable }> {
  const first = await auth.readRecording({ id: req.id, user: req.user });
  async function* lines(): AsyncGenerator<string> {
    yield JSON.stringify(first.header) + '\n';
    let page = first;
    for (;;) {
      for (const c of page.chunks) yield c.events;
      if (!page.more || page.chunks.length === 0) return;
      page = await auth.readRecording({ id: req.id, user: req.user, afterSeq: page.chunks[page.chunks.length - 1].seq });
    }
  }
  return { meta: first.meta, stream: Readable.from(lines(), { objectMode: false }) };
}
