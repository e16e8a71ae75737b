// Small pieces every page uses: messages that say what kind they are (not by colour alone),
// the page title, and a secret shown in groups with a copy button.
import { useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';

/** An error: red, an icon and the word "Error", announced at once (role="alert"). */
export function ErrorMessage(props: { children: ComponentChildren }) {
  return <p class="error" role="alert"><span class="icon" aria-hidden="true">⚠</span> <strong>Error:</strong> {props.children}</p>;
}

/** Something went well: green with a check mark, announced politely. */
export function SuccessMessage(props: { children: ComponentChildren }) {
  return <p class="notice" role="status"><span class="icon" aria-hidden="true">✓</span> {props.children}</p>;
}

/** Neutral information (logged out, a participant joined): blue-grey with an "i". */
export function InfoMessage(props: { children: ComponentChildren; class?: string }) {
  return <p class={`info${props.class ? ` ${props.class}` : ''}`} role="status"><span class="icon" aria-hidden="true">ℹ</span> {props.children}</p>;
}

/** Sets the document title to "WHAT · Postern" while a page is shown. */
export function useTitle(what: string): void {
  useEffect(() => { document.title = `${what} · Postern`; }, [what]);
}

/**
 * A secret (the TOTP key) in groups of four that each stay on one line, and a copy button.
 * The groups are inline blocks with no space between them, so a selection or the element's
 * text is the secret itself, while a line may still break between two groups.
 */
export function Secret(props: { value: string; testid?: string }) {
  const [copied, setCopied] = useState('');
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(props.value);
      setCopied('Secret copied.');
    } catch {
      setCopied('Copying failed; select the secret and copy it by hand.');
    }
  };
  return (
    <div class="secret-row">
      <span>Secret:</span>
      <code class="secret" data-testid={props.testid}>{(props.value.match(/.{1,4}/g) ?? []).map((g) => <span class="group">{g}</span>)}</code>
      <button type="button" class="small" onClick={() => void copy()}>Copy<span class="sr"> the secret</span></button>
      <span class="muted copied" role="status">{copied}</span>
    </div>
  );
}
