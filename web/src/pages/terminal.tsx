// The terminal: xterm.js over a secure websocket, for a new shell on a node or to join a live session.
import { ErrorMessage, InfoMessage } from '../ui.tsx';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { query } from '../router.ts';
import type { ActiveSession } from '../../../src/api/types.ts';

/** Someone in the live session, as the proxy's session messages list them. */
type Participant = ActiveSession['participants'][number];
type Status = 'connecting' | 'connected' | 'ended' | 'dropped' | 'error';

/** How each state shows: an icon and words, so an ended or failed session never reads as success. */
const STATUS: Record<Status, [string, string]> = {
  connecting: ['…', 'connecting'],
  connected: ['●', 'connected'],
  ended: ['■', 'ended'],
  dropped: ['⚠', 'dropped'],
  error: ['⚠', 'error'],
};

export function TerminalPage(props: { join?: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>('connecting');
  const [detail, setDetail] = useState('');
  const [title, setTitle] = useState('');
  const [people, setPeople] = useState<Participant[]>([]);
  // A joined session's mode is known from the address at once and confirmed by the proxy.
  const [mode, setMode] = useState(props.join ? (query().get('mode') ?? 'observer') : '');
  const termRef = useRef<Terminal | undefined>(undefined);
  const wsRef = useRef<WebSocket | undefined>(undefined);

  useEffect(() => {
    const q = query();
    const term = new Terminal({ cursorBlink: true, fontSize: 14, fontFamily: 'ui-monospace, Menlo, Consolas, monospace', theme: { background: '#111418' }, allowProposedApi: false });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    fit.fit();
    termRef.current = term;
    const url = props.join
      ? `wss://${location.host}/webapi/sessions/${encodeURIComponent(props.join)}/join?mode=${encodeURIComponent(q.get('mode') ?? 'observer')}`
      : `wss://${location.host}/webapi/terminal?node=${encodeURIComponent(q.get('node') ?? '')}&login=${encodeURIComponent(q.get('login') ?? '')}&cols=${term.cols}&rows=${term.rows}`;
    setTitle(props.join ? `Joining session ${props.join}` : `${q.get('login')}@${q.get('node')}`);
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    wsRef.current = ws;
    let ended = false;
    const enc = new TextEncoder();
    ws.onopen = () => setStatus('connected');
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') { term.write(new Uint8Array(ev.data as ArrayBuffer)); return; }
      const msg = JSON.parse(ev.data) as { type: string; text?: string; code?: number | null; reason?: string; message?: string; hint?: string; participants?: Participant[]; mode?: string; node?: string; login?: string; owner?: string };
      if (msg.type === 'session') {
        setPeople(msg.participants ?? []);
        setMode(msg.mode ?? '');
        setTitle(`${msg.login}@${msg.node}${msg.owner ? ` (session of ${msg.owner})` : ''}`);
      } else if (msg.type === 'notice') {
        setPeople(msg.participants ?? []);
        setDetail(msg.text ?? '');
      } else if (msg.type === 'exit') {
        ended = true;
        setStatus('ended');
        setDetail(msg.code === null || msg.code === undefined ? (msg.reason ?? 'The session ended.') : `The session ended with exit status ${msg.code}.`);
      } else if (msg.type === 'error') {
        ended = true;
        setStatus('error');
        setDetail(`${msg.message}${msg.hint ? `. ${msg.hint}` : ''}`);
      }
    };
    ws.onclose = () => { if (!ended) { setStatus('dropped'); setDetail('The connection to the proxy dropped.'); } };
    const keys = term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
    const sendSize = (): void => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows })); };
    const resized = term.onResize(sendSize);
    // Refit whenever the box changes: a window resize, a phone turning, the bar above wrapping
    // onto another line or a message appearing. One fit per frame.
    let frame = 0;
    const refit = (): void => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => { if (host.current && host.current.clientWidth > 0 && host.current.clientHeight > 0) fit.fit(); });
    };
    const observer = new ResizeObserver(refit);
    observer.observe(host.current!);
    window.addEventListener('resize', refit);
    window.addEventListener('orientationchange', refit);
    term.focus();
    return () => {
      keys.dispose(); resized.dispose(); observer.disconnect(); cancelAnimationFrame(frame);
      window.removeEventListener('resize', refit); window.removeEventListener('orientationchange', refit);
      ws.close(); term.dispose();
    };
  }, [props.join]);

  const copy = (): void => { const t = termRef.current?.getSelection(); if (t) void navigator.clipboard.writeText(t); };
  const paste = async (): Promise<void> => {
    const text = await navigator.clipboard.readText();
    if (wsRef.current?.readyState === WebSocket.OPEN) wsRef.current.send(new TextEncoder().encode(text));
    termRef.current?.focus();
  };
  return (
    <section class="terminal-page" aria-labelledby="term-title">
      <div class="term-bar">
        <h1 id="term-title">{title}</h1>
        <span class={`status ${status}`} role="status" data-status={status}><span class="sr">Status: </span><span aria-hidden="true">{STATUS[status][0]} </span>{STATUS[status][1]}</span>
        {mode && <span class="muted">as {mode}</span>}
        <span class="people">{people.length > 0 && <><span class="sr">Present: </span>{people.map((p) => `${p.user} (${p.mode})`).join(', ')}</>}</span>
        <button type="button" class="small" onClick={copy}>Copy</button>
        {/* An observer's keys never reach the shell, so there is nothing to paste into. */}
        {mode !== 'observer' && <button type="button" class="small" onClick={() => void paste()}>Paste</button>}
      </div>
      <div class="term-msg" aria-live="polite">
        {detail && (status === 'error' || status === 'dropped' ? <ErrorMessage>{detail}</ErrorMessage>
          : status === 'ended' ? <InfoMessage class="ended">{detail}</InfoMessage>
          : <InfoMessage>{detail}</InfoMessage>)}
      </div>
      <div class="term-frame"><div class="term" ref={host} data-testid="terminal" /></div>
    </section>
  );
}
