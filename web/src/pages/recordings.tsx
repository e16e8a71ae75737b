// Recordings: the list, and a player (play/pause, speed, seek) that renders the asciicast in xterm.
import { ErrorMessage } from '../ui.tsx';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { api, errorText } from '../api.ts';
import { navigate } from '../router.ts';
import type { RecordingMeta } from '../../../src/api/types.ts';
import { parseCast, type CastEvent } from '../../../src/api/asciicast.ts';

function length(sec: number): string {
  const s = Math.round(sec);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function Recordings() {
  const [list, setList] = useState<RecordingMeta[] | undefined>();
  const [error, setError] = useState('');
  useEffect(() => { api<RecordingMeta[]>('GET', '/webapi/recordings').then(setList, (err) => setError(errorText(err))); }, []);
  return (
    <section aria-labelledby="rec-title">
      <h1 id="rec-title">Recordings</h1>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      <div aria-live="polite">{!list ? <p>Loading…</p> : list.length === 0 ? <p>No recordings yet.</p> : null}</div>
      {list && list.length > 0 && (
        <table class="list">
          <thead><tr><th>Who</th><th>Node</th><th>When</th><th>Length</th><th>What</th><th><span class="sr">Play</span></th></tr></thead>
          <tbody>
            {list.map((r) => (
              <tr data-recording={r.id}>
                <td data-label="Who">{r.user}</td><td data-label="Node">{r.login}@{r.node}</td><td data-label="When">{new Date(r.startedAt).toLocaleString()}</td><td data-label="Length">{length(r.durationSec)}</td>
                <td class="mono" data-label="What">{r.command ?? r.kind}{r.status !== 'complete' ? ` (${r.status})` : ''}</td>
                <td class="actions">
                  <button type="button" onClick={() => navigate(`recordings/${r.id}`)}>Play</button>
                  <a class="button" href={`/webapi/recordings/${r.id}?download=1`} download={`${r.id}.cast`}>Download .cast</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function Player(props: { id: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [error, setError] = useState('');
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const [pos, setPos] = useState(0);
  const [duration, setDuration] = useState(0);
  const state = useRef<{ term?: Terminal; events: CastEvent[]; index: number; at: number; timer?: number; last: number }>({ events: [], index: 0, at: 0, last: 0 });

  useEffect(() => {
    let term: Terminal | undefined;
    fetch(`/webapi/recordings/${encodeURIComponent(props.id)}`, { credentials: 'same-origin' }).then(async (res) => {
      if (!res.ok) throw new Error(((await res.json().catch(() => ({}))) as { error?: { message?: string } }).error?.message ?? `cannot load the recording (${res.status})`);
      const cast = parseCast(await res.text());
      term = new Terminal({ cols: cast.header.width, rows: cast.header.height, fontSize: 13, disableStdin: true, theme: { background: '#111418' } });
      term.open(host.current!);
      state.current.term = term;
      state.current.events = cast.events;
      setDuration(cast.events.length ? cast.events[cast.events.length - 1][0] : 0);
      setPlaying(true);
    }).catch((err: Error) => setError(err.message));
    return () => { clearInterval(state.current.timer); term?.dispose(); };
  }, [props.id]);

  // Writes every event up to time t; seeking back starts over from the top.
  const showUntil = (t: number): void => {
    const s = state.current;
    if (!s.term) return;
    if (t < s.at) { s.term.reset(); s.index = 0; }
    let out = '';
    while (s.index < s.events.length && s.events[s.index][0] <= t) {
      const [, code, data] = s.events[s.index++];
      if (code === 'o') out += data;
      else if (code === 'r') { const [c, r] = data.split('x').map(Number); if (c > 0 && r > 0) s.term.resize(c, r); }
    }
    if (out) s.term.write(out);
    s.at = t;
    setPos(t);
  };

  useEffect(() => {
    const s = state.current;
    clearInterval(s.timer);
    if (!playing) return;
    s.last = performance.now();
    s.timer = window.setInterval(() => {
      const now = performance.now();
      const t = s.at + ((now - s.last) / 1000) * speed;
      s.last = now;
      showUntil(t);
      if (s.index >= s.events.length) { setPlaying(false); }
    }, 50);
    return () => clearInterval(s.timer);
  }, [playing, speed]);

  return (
    <section aria-labelledby="player-title" class="player">
      <h1 id="player-title">Recording <span class="mono id">{props.id}</span></h1>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      <div class="player-bar">
        <button type="button" onClick={() => { if (state.current.index >= state.current.events.length) showUntil(0); setPlaying(!playing); }}>{playing ? 'Pause' : 'Play'}</button>
        <label>Speed<select value={String(speed)} onChange={(e) => setSpeed(Number(e.currentTarget.value))}>
          {[0.5, 1, 2, 4, 8].map((v) => <option value={String(v)}>{v}×</option>)}
        </select></label>
        <label class="seek">Position<input type="range" min={0} max={duration || 0} step={0.1} value={pos} onInput={(e) => showUntil(Number(e.currentTarget.value))} /></label>
        <span class="mono">{Math.min(pos, duration).toFixed(1)} / {duration.toFixed(1)} s</span>
        <a class="button" href={`/webapi/recordings/${props.id}?download=1`} download={`${props.id}.cast`}>Download .cast</a>
      </div>
      <div class="term" ref={host} data-testid="player" tabIndex={0} role="region" aria-label="Playback (scrolls sideways when wider than the screen)" />
    </section>
  );
}
